//! The generative model end to end: the shipped generator decodes prior samples into valid crystals,
//! charge-balanced decoding, the conditional sampler, the CLI and the `generate` job (training a tiny
//! model is in `generative_train.rs`).

use geode::crystal::Structure;
use geode::ml::generative::{Codes, Constraints, CrystalVae, SampleOptions};

#[test]
fn the_shipped_generator_decodes_prior_samples_into_valid_crystals() {
    geode::ml::init_threads(1);
    let vae = CrystalVae::shipped().unwrap();
    assert!(vae.card.latent_prior.is_some(), "the shipped generator carries its fitted latent prior");
    let z = vae.prior_codes(16, 5);
    let c = Constraints { elements: vec!["Li".into(), "Fe".into(), "P".into(), "O".into()], ..Default::default() };
    let out = vae
        .decode(&z, &c, &SampleOptions { steps_per_level: 2, seed: 1, ..Default::default() }, &mut |_, _| {}, &|| false)
        .unwrap();
    let built: Vec<&Structure> = out.iter().filter_map(|d| d.structure.as_ref().ok()).collect();
    assert!(built.len() >= 14, "only {} of 16 decoded", built.len());
    let allowed = ["Li", "Fe", "P", "O"];
    for s in &built {
        assert!(
            s.species().iter().all(|e| allowed.contains(&e.symbol())),
            "{} uses an element outside the constraint",
            s.reduced_formula()
        );
    }
    let valid = built.iter().filter(|s| s.is_structurally_valid()).count();
    assert!(valid >= 12, "only {valid} of {} structurally valid", built.len());
}

#[test]
fn a_formula_guide_steers_the_choice_of_formula() {
    geode::ml::init_threads(1);
    let vae = CrystalVae::shipped().unwrap();
    let z = vae.prior_codes(24, 11);
    let c = Constraints::default();
    let opts = SampleOptions { steps_per_level: 1, seed: 3, guidance: 1.0, ..Default::default() };
    let elements = |out: &[geode::ml::generative::Decoded]| {
        out.iter().filter_map(|d| d.structure.as_ref().ok()).map(|s| s.composition().n_elements()).sum::<usize>()
    };
    let plain = vae.decode(&z, &c, &opts, &mut |_, _| {}, &|| false).unwrap();
    // A guide that charges two nats per element prefers the simpler of the near formulas.
    let calls = std::cell::Cell::new(0);
    let small: &geode::ml::generative::sample::FormulaGuide = &|f: &[Vec<usize>]| {
        calls.set(calls.get() + 1);
        f.iter().map(|c| 2.0 * c.iter().filter(|k| **k > 0).count() as f64).collect()
    };
    let guided = vae.decode_guided(&z, &[], &c, &opts, Some(small), &mut |_, _| {}, &|| false).unwrap();
    assert_eq!(calls.get(), 1, "one guide call per batch");
    assert!(
        elements(&guided) < elements(&plain),
        "guided {} elements in all, plain {}",
        elements(&guided),
        elements(&plain)
    );
    for d in &guided {
        let s = d.structure.as_ref().unwrap();
        assert!(
            geode::chem::oxidation::validity(&s.composition(), Default::default()).is_valid(),
            "{} is charge-balanced",
            s.reduced_formula()
        );
    }
    // Guidance 0 ignores the guide.
    let off = vae
        .decode_guided(
            &z,
            &[],
            &c,
            &SampleOptions { guidance: 0.0, ..opts.clone() },
            Some(small),
            &mut |_, _| {},
            &|| false,
        )
        .unwrap();
    assert_eq!(elements(&off), elements(&plain));
}

#[test]
fn the_element_count_prior_keeps_prior_samples_to_the_usual_number_of_elements() {
    geode::ml::init_threads(1);
    let vae = CrystalVae::shipped().unwrap();
    let log_p =
        vae.card.element_count_log_prior.as_ref().expect("the shipped generator carries its element-count prior");
    assert!(vae.card.element_count_offsets.is_some(), "and its calibrated bonus");
    // The training split: most crystals have 2–4 elements, few have one or more than five.
    let p = |k: usize| log_p[k].exp();
    assert!(p(3) > 0.4 && p(1) < 0.03 && (6..log_p.len()).map(p).sum::<f64>() < 0.02, "{log_p:?}");
    // 200 prior codes the calibration never saw; the formula does not depend on the positions.
    let z = vae.prior_codes(200, 21);
    let c = Constraints::default();
    let opts = SampleOptions { steps_per_level: 1, seed: 5, ..Default::default() };
    let shares = |vae: &CrystalVae, w: f64| {
        let out =
            vae.decode(&z, &c, &SampleOptions { element_prior: w, ..opts.clone() }, &mut |_, _| {}, &|| false).unwrap();
        let mut s = vec![0.0; log_p.len()];
        for st in out.iter().filter_map(|d| d.structure.as_ref().ok()) {
            s[st.composition().n_elements().min(log_p.len() - 1)] += 1.0 / z.size()[0] as f64;
        }
        s
    };
    // W₁ between the number-of-elements distributions of decoded and training formulas.
    let w1 = |s: &[f64]| {
        (0..s.len()).map(|k| ((0..=k).map(|j| s[j]).sum::<f64>() - (0..=k).map(p).sum::<f64>()).abs()).sum::<f64>()
    };
    let (calibrated, off) = (shares(&vae, 1.0), shares(&vae, 0.0));
    let mut uncalibrated = CrystalVae::shipped().unwrap();
    uncalibrated.card.element_count_offsets = None;
    let raw = shares(&uncalibrated, 1.0);
    // Measured on 1,000 samples: 28 % of formulas outside 2–5 elements without the prior, and 71 %
    // ternaries (54 % in training) with ln P(k) as the bonus (docs/generative.md).
    let unusual = |s: &[f64]| s[1] + s[6..].iter().sum::<f64>();
    assert!(
        unusual(&calibrated) * 2.0 < unusual(&off),
        "1 or > 5 elements: {calibrated:?} with the prior, {off:?} without"
    );
    for (k, share) in calibrated.iter().enumerate().take(5).skip(1) {
        assert!(
            (share - p(k)).abs() < 0.07,
            "{k} elements: {share:.3} of decoded formulas, {:.3} of training crystals",
            p(k)
        );
    }
    assert!(
        w1(&calibrated) < 0.15 && w1(&calibrated) * 2.0 < w1(&raw),
        "W1 calibrated {:.3}, with ln P(k) {:.3}",
        w1(&calibrated),
        w1(&raw)
    );
}

#[test]
fn decoding_with_several_formulas_keeps_the_crystal_that_encodes_nearest_its_code() {
    geode::ml::init_threads(1);
    let vae = CrystalVae::shipped().unwrap();
    let ds = geode::data::Dataset::embedded();
    let test: Vec<Structure> = ds
        .split(geode::data::Split::Test)
        .filter(|e| e.structure.n_sites() <= 20)
        .step_by(97)
        .take(12)
        .map(|e| e.structure.clone())
        .collect();
    let z = vae.encode_structures(&test).unwrap();
    let c = Constraints::default();
    let opts = SampleOptions { steps_per_level: 1, seed: 9, ..Default::default() };
    let by_rank: Vec<Vec<Structure>> = (0..3)
        .map(|r| {
            vae.decode_with_formula_rank(&z, &[], &c, &opts, None, r, &mut |_, _| {}, &|| false)
                .unwrap()
                .into_iter()
                .map(|d| d.structure.unwrap())
                .collect()
        })
        .collect();
    let kept: Vec<Structure> = vae
        .decode(&z, &c, &SampleOptions { formula_candidates: 3, ..opts.clone() }, &mut |_, _| {}, &|| false)
        .unwrap()
        .into_iter()
        .map(|d| d.structure.unwrap())
        .collect();
    let codes = Vec::<f32>::try_from(z.flatten(0, -1)).unwrap();
    let l = vae.latent_dim() as usize;
    let distance = |s: &Structure, i: usize| {
        let again = Vec::<f32>::try_from(vae.encode_structures([s]).unwrap().flatten(0, -1)).unwrap();
        again.iter().zip(&codes[i * l..(i + 1) * l]).map(|(a, b)| ((a - b) * (a - b)) as f64).sum::<f64>().sqrt()
    };
    let mut moved = 0;
    for i in 0..test.len() {
        let d: Vec<f64> = (0..3).map(|r| distance(&by_rank[r][i], i)).collect();
        let valid: Vec<bool> = (0..3).map(|r| by_rank[r][i].is_structurally_valid()).collect();
        let best =
            (0..3).max_by(|&a, &b| (valid[a], -d[a]).partial_cmp(&(valid[b], -d[b])).unwrap().then(b.cmp(&a))).unwrap();
        assert_eq!(kept[i].reduced_formula(), by_rank[best][i].reduced_formula(), "crystal {i}: distances {d:?}");
        assert!((distance(&kept[i], i) - d[best]).abs() < 1e-4, "crystal {i} is the decoding of rank {best}");
        moved += usize::from(best != 0);
    }
    // Rank 0 is the plain decoding.
    let plain: Vec<String> = vae
        .decode(&z, &c, &opts, &mut |_, _| {}, &|| false)
        .unwrap()
        .iter()
        .map(|d| d.structure.as_ref().unwrap().reduced_formula())
        .collect();
    assert_eq!(plain, by_rank[0].iter().map(|s| s.reduced_formula()).collect::<Vec<_>>());
    assert!(moved > 0, "some crystal keeps a formula other than the cheapest");
}

fn geode(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_geode"))
        .args(args)
        .env("OMP_NUM_THREADS", "1")
        .output()
        .expect("geode runs")
}

#[test]
fn generate_writes_cifs_and_a_table_that_eval_scores() {
    let dir = std::env::temp_dir().join(format!("geode-gen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_str().unwrap();
    let out = geode(&[
        "generate",
        "--n",
        "10",
        "--elements",
        "Li,Fe,P,O",
        "--target",
        "band_gap in [1, 3]",
        "--steps-per-level",
        "2",
        "--out",
        d,
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["requested"], 10);
    let written = summary["written"].as_u64().unwrap() as usize;
    assert!(written >= 8, "{summary}");
    let csv = std::fs::read_to_string(dir.join("generated.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert!(header.contains(&"band_gap") && header.contains(&"distance_to_target") && header.contains(&"novel"));
    assert_eq!(csv.lines().count(), written + 1);
    for line in csv.lines().skip(1) {
        let file = line.split(',').next().unwrap();
        let s = geode::io::read_structures(&dir.join(file)).unwrap();
        assert!(s[0].species().iter().all(|e| ["Li", "Fe", "P", "O"].contains(&e.symbol())));
    }
    let out = geode(&["generate", "eval", d, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["metrics"]["n"].as_u64().unwrap() as usize, written);
    let sv = m["metrics"]["structural_validity"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&sv));
    // Coverage of the whole test split by these few crystals: defined, small, and the looser CDVAE
    // variant never below the definition's.
    let cov = &m["metrics"]["coverage"];
    assert!(cov["n_reference"].as_u64().unwrap() > 2000, "{cov}");
    assert_eq!(cov["n_generated"].as_u64().unwrap() as usize, written);
    let (r, p) = (cov["recall"].as_f64().unwrap(), cov["precision"].as_f64().unwrap());
    assert!((0.0..0.1).contains(&r) && (0.0..=1.0).contains(&p), "{cov}");
    assert!(cov["recall_cdvae"].as_f64().unwrap() >= r && cov["precision_cdvae"].as_f64().unwrap() >= p);
    // Bad input: a folder without crystals is a clear error, not a panic.
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = geode(&["generate", "eval", empty.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no readable crystal files"));
    let out = geode(&["generate", "--n", "2", "--target", "gap in [1,2]", "--out", d]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown property"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn generate_map_writes_the_latent_map_headless_by_pca_or_tsne() {
    let dir = std::env::temp_dir().join(format!("geode-genmap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let test_split = geode::data::Dataset::embedded().split(geode::data::Split::Test).count();
    let mut kept = Vec::new();
    for method in ["pca", "tsne"] {
        let out_csv = dir.join(format!("{method}.csv"));
        let out = geode(&[
            "generate",
            "map",
            "--split",
            "test",
            "--method",
            method,
            "--out",
            out_csv.to_str().unwrap(),
            "--json",
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(summary["method"], method);
        assert_eq!(summary["crystals"].as_u64().unwrap() as usize, test_split);
        let mut r = csv::Reader::from_path(&out_csv).unwrap();
        assert_eq!(
            r.headers().unwrap().iter().collect::<Vec<_>>(),
            ["id", "name", "formula", "split", "x", "y", "formation_energy_per_atom", "band_gap"]
        );
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), test_split);
        assert!(rows.iter().all(|row| &row[3] == "test"
            && row[4].parse::<f64>().unwrap().is_finite()
            && row[5].parse::<f64>().unwrap().is_finite()));
        kept.push(summary["neighbours_kept"].as_f64().unwrap());
    }
    // t-SNE keeps far more of each crystal's nearest codes as nearest map points than PCA does.
    assert!(kept[1] > 0.25 && kept[1] > 3.0 * kept[0], "neighbours kept: PCA {:.3}, t-SNE {:.3}", kept[0], kept[1]);
    // Bad settings are clear errors.
    let out = geode(&["generate", "map", "--method", "umap", "--out", dir.join("x.csv").to_str().unwrap()]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("unknown map method"));
    let out = geode(&[
        "generate",
        "map",
        "--split",
        "test",
        "--method",
        "tsne",
        "--perplexity",
        "1000",
        "--out",
        dir.join("x.csv").to_str().unwrap(),
    ]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("needs more than"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_generate_job_streams_candidates_into_the_project() {
    let dir = std::env::temp_dir().join(format!("geode-genjob-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("gen.toml");
    std::fs::write(&cfg, "n = 6\nbatch = 4\nseeds = [\"NaCl\"]\n[settings]\nmode = \"around\"\nradius = 0.3\n[settings.sampling]\nsteps_per_level = 2\n").unwrap();
    let project = dir.join("p.geode");
    let out = geode(&[
        "run",
        "generate",
        "--config",
        cfg.to_str().unwrap(),
        "--project",
        project.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = geode(&["candidates", "--project", project.to_str().unwrap(), "list", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("head_band_gap") && text.contains("crystal-vae"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn charge_balanced_decoding_makes_every_formula_pass_smact() {
    geode::ml::init_threads(1);
    let vae = CrystalVae::shipped().unwrap();
    let z = vae.prior_codes(48, 11);
    let decode = |charge_balance: bool, element_prior: f64| -> Vec<Structure> {
        let o = SampleOptions { steps_per_level: 1, seed: 2, charge_balance, element_prior, ..Default::default() };
        vae.decode(&z, &Constraints::default(), &o, &mut |_, _| {}, &|| false)
            .unwrap()
            .into_iter()
            .filter_map(|d| d.structure.ok())
            .collect()
    };
    let smact = |s: &Structure| geode::chem::oxidation::validity(&s.composition(), Default::default()).is_valid();
    // The projection alone (no element-count prior, which re-chooses every formula) ...
    let (raw, balanced) = (decode(false, 0.0), decode(true, 0.0));
    assert_eq!(raw.len(), balanced.len());
    let raw_valid = raw.iter().filter(|s| smact(s)).count();
    assert!(raw_valid < raw.len(), "the heads alone give some formulas SMACT rejects ({raw_valid} of {})", raw.len());
    // ... and with the prior (the default): every formula passes either way.
    for s in balanced.iter().chain(&decode(true, 1.0)) {
        assert!(smact(s), "{} is not charge-balanced", s.reduced_formula());
    }
    // Without the prior, formulas that already passed are kept as they were, unless they pass only through a
    // rare oxidation state (peroxide O⁻, Cl⁷⁺…), which the projection avoids when it can.
    let rare = |s: &Structure| {
        geode::chem::oxidation::rare_states(&s.composition(), Default::default()).is_some_and(|r| !r.is_empty())
    };
    for (a, b) in raw.iter().zip(&balanced) {
        if smact(a) && !rare(a) {
            assert_eq!(a.reduced_formula(), b.reduced_formula());
        }
    }
}

#[test]
fn the_conditional_sampler_starts_from_training_crystals_that_meet_the_target() {
    use geode::search::generate::{Campaign, CampaignSettings, Mode};
    geode::ml::init_threads(1);
    let settings = CampaignSettings {
        mode: Mode::Conditional,
        radius: 0.0,
        targets: vec![geode::search::generate::PropertyTarget::parse("band_gap in [3.0, 3.5]").unwrap()],
        opt_steps: 0,
        sampling: SampleOptions { steps_per_level: 1, ..Default::default() },
        ..Default::default()
    };
    let campaign = Campaign::new(CrystalVae::shipped().unwrap(), settings, &[]).unwrap();
    // With radius 0 and no optimisation the codes are training crystals' own codes, whose heads predict
    // gaps near the window far more often than prior samples do.
    let codes = campaign.codes(0, 64, 64, 3);
    let prior = campaign.vae.prior(64, 3);
    let gap_head = |z: &Codes| -> f64 {
        let p: Vec<f64> = campaign.vae.property_heads(z, false).iter().map(|h| h[1]).collect();
        p.iter().sum::<f64>() / p.len() as f64
    };
    let (cond, unc) = (gap_head(&codes), gap_head(&prior));
    assert!(cond > unc + 1.0 && cond > 2.0, "mean head band gap {cond:.2} eV (conditional) vs {unc:.2} eV (prior)");
    // Each conditional code carries its training crystal's composition as an anchor; with full weight
    // the decoded formulas are exactly those compositions (charge-balanced training formulas).
    let anchors = campaign.anchors(0, 8, 3);
    assert!(
        anchors.iter().all(|a| a.as_ref().is_some_and(|f| (f.iter().sum::<f64>() - 1.0).abs() < 1e-9)),
        "every conditional code has an anchor"
    );
    let full = SampleOptions { steps_per_level: 1, seed: 1, composition_anchor: 1.0, ..Default::default() };
    let decoded = campaign
        .vae
        .decode_codes(
            &codes.select(&(0..8).collect::<Vec<_>>()),
            &anchors,
            &Constraints::default(),
            &full,
            None,
            &mut |_, _| {},
            &|| false,
        )
        .unwrap();
    for (d, a) in decoded.iter().zip(&anchors) {
        let s = d.structure.as_ref().unwrap();
        let f = a.as_ref().unwrap();
        for e in s.species() {
            assert!(
                f[e.z() as usize - 1] > 0.0,
                "{} holds {}, which its anchor does not",
                s.reduced_formula(),
                e.symbol()
            );
        }
    }
    let sample = Campaign::new(CrystalVae::shipped().unwrap(), CampaignSettings::default(), &[]).unwrap();
    assert!(sample.anchors(0, 4, 3).iter().all(Option::is_none), "prior sampling has no anchors");
    // No training crystal meets an impossible target: a clear error.
    let bad = CampaignSettings {
        mode: Mode::Conditional,
        targets: vec![geode::search::generate::PropertyTarget::parse("band_gap in [3.0, 3.5]").unwrap()],
        constraints: Constraints { elements: vec!["Cu".into(), "Zn".into()], ..Default::default() },
        ..Default::default()
    };
    let err = Campaign::new(CrystalVae::shipped().unwrap(), bad, &[]).err().unwrap();
    assert!(err.contains("no training crystal meets"), "{err}");
}

#[test]
fn generated_crystals_are_relaxed_and_scored_for_sun() {
    let dir = std::env::temp_dir().join(format!("geode-gen-relax-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_str().unwrap();
    // CLI: relaxed CIFs beside the generated ones, the relaxed columns in the table.
    let window = (0.5, 3.0);
    let target = format!("band_gap in [{}, {}]", window.0, window.1);
    let out = geode(&[
        "generate",
        "--n",
        "3",
        "--elements",
        "Na,Cl",
        "--steps-per-level",
        "1",
        "--target",
        &target,
        "--oversample",
        "1",
        "--relax",
        "lj:sigma=2.8,epsilon=0.02",
        "--relax-steps",
        "5",
        "--out",
        d,
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let relaxed = summary["relaxed"].as_u64().unwrap();
    assert!(relaxed >= 1 && relaxed == summary["valid"].as_u64().unwrap(), "{summary}");
    let csv = std::fs::read_to_string(dir.join("generated.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "relaxed_file").unwrap();
    let files: Vec<&str> =
        csv.lines().skip(1).map(|l| l.split(',').nth(col).unwrap()).filter(|f| !f.is_empty()).collect();
    assert_eq!(files.len() as u64, relaxed);
    assert!(geode::io::read_structures(&dir.join(files[0])).is_ok());
    // The relaxed crystal is judged again: its band-gap columns are `geode predict` on the relaxed CIF
    // (not the parent's copied), and its distance to the window follows from them.
    let at =
        |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    let (gap, gap_std, dist) = (at("relaxed_band_gap"), at("relaxed_band_gap_std"), at("relaxed_distance_to_target"));
    let mut hits = 0;
    for line in csv.lines().skip(1).filter(|l| !l.split(',').nth(col).unwrap().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let out = geode(&["predict", dir.join(f[col]).to_str().unwrap(), "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let (g, s, d): (f64, f64, f64) =
            (f[gap].parse().unwrap(), f[gap_std].parse().unwrap(), f[dist].parse().unwrap());
        assert!(
            (g - p["band_gap"]["mean"].as_f64().unwrap()).abs() < 2e-3
                && (s - p["band_gap"]["std"].as_f64().unwrap()).abs() < 2e-3,
            "{line} against {p}"
        );
        assert!((d - (window.0 - g).max(g - window.1).max(0.0)).abs() < 1e-3, "{line}");
        hits += usize::from(d == 0.0);
    }
    assert_eq!(summary["target_hits_after_relaxation"], hits, "{summary}");
    // Eval: S.U.N. with a potential that has no hull counts nothing stable, but relaxes the valid ones.
    let out = geode(&[
        "generate",
        "eval",
        d,
        "--no-coverage",
        "--relax",
        "lj:sigma=2.8,epsilon=0.02",
        "--relax-steps",
        "5",
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["sun"]["n_stable"], 0);
    assert!(m["metrics"]["coverage"].is_null(), "--no-coverage leaves coverage out");
    assert_eq!(m["sun"]["n_valid"].as_u64().unwrap(), relaxed, "the valid generated crystals (relaxed/ is not read)");
    // The job: relaxed children linked to their generated parents.
    let cfg = dir.join("gen.toml");
    std::fs::write(&cfg, format!("n = 2\nbatch = 2\nrelax = \"lj:sigma=2.8,epsilon=0.02\"\nrelax_steps = 5\n[settings]\ntargets = [\"{target}\"]\noversample = 1\n[settings.constraints]\nelements = [\"Na\", \"Cl\"]\n[settings.sampling]\nsteps_per_level = 1\n")).unwrap();
    let project = dir.join("p.geode");
    let out = geode(&[
        "run",
        "generate",
        "--config",
        cfg.to_str().unwrap(),
        "--project",
        project.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let store = geode::engine::store::Store::open(&project).unwrap();
    let rows = store.query_candidates(None, None, None, None).unwrap();
    let relaxed: Vec<_> = rows.iter().filter(|c| c.stage == "relaxed").collect();
    let generated = rows.iter().filter(|c| c.stage == "generated").count();
    assert_eq!(relaxed.len(), generated, "one relaxed child per valid generated crystal");
    for r in relaxed {
        let parents = store.candidate_parents(r.id).unwrap();
        assert_eq!(parents.len(), 1);
        assert!(r.properties.get("relaxed_energy_per_atom").is_some());
        // Its own predictions under the parent's names, and its own distance to the window.
        let num = |k: &str| {
            r.properties
                .get(k)
                .and_then(|v| v.get("value").and_then(|x| x.as_f64()).or_else(|| v.as_f64()))
                .unwrap_or_else(|| panic!("no {k} in {:?}", r.properties))
        };
        let g = num("band_gap");
        assert!((num("distance_to_target") - (window.0 - g).max(g - window.1).max(0.0)).abs() < 1e-9);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn oversampled_runs_keep_the_decoding_the_generator_itself_puts_nearest_the_target() {
    use geode::search::generate::{Campaign, CampaignSettings, Mode};
    geode::ml::init_threads(1);
    let settings = |r: usize| CampaignSettings {
        mode: Mode::Conditional,
        targets: vec![geode::search::generate::PropertyTarget::parse("band_gap in [1.5, 2.0]").unwrap()],
        opt_steps: 0,
        sampling: SampleOptions { steps_per_level: 1, ..Default::default() },
        oversample: r,
        ..Default::default()
    };
    let campaign = Campaign::new(CrystalVae::shipped().unwrap(), settings(3), &[]).unwrap();
    assert_eq!(campaign.oversample(), 3);
    let model = geode::ml::shipped::open("composition").unwrap();
    let kept = campaign.generate(0, 4, 4, 5, model.as_ref(), &mut |_, _| {}, &|| false).unwrap();
    assert_eq!(kept.len(), 4, "one crystal per requested crystal");
    // The same 12 codes decoded one by one: crystal i is the best of codes 3i, 3i + 1, 3i + 2.
    let codes = campaign.codes(0, 12, 12, 5);
    let decoded = campaign.decode_codes(&codes, &campaign.anchors(0, 12, 5), 5, &mut |_, _| {}, &|| false).unwrap();
    let scores = campaign.cycle_scores(&decoded);
    assert!(scores.iter().all(|s| s.is_finite()), "every crystal was built and encoded again: {scores:?}");
    assert!(scores.iter().any(|s| (s - scores[0]).abs() > 1e-6), "the scores tell crystals apart: {scores:?}");
    for (i, g) in kept.iter().enumerate() {
        let g = g.as_ref().unwrap();
        let best = (3 * i..3 * i + 3).min_by(|&a, &b| scores[a].total_cmp(&scores[b])).unwrap();
        assert_eq!(g.latent, codes.rows_f32()[best], "crystal {i} keeps the code of its best sibling");
        assert_eq!(g.structure.reduced_formula(), decoded[best].structure.as_ref().unwrap().reduced_formula());
    }
    // Around two seeds, every sibling of crystal i walks around seed i mod 2 (radius 0: exactly its code).
    let seeds: Vec<Structure> = geode::data::Dataset::embedded()
        .split(geode::data::Split::Train)
        .take(2)
        .map(|e| e.structure.clone())
        .collect();
    let around = CampaignSettings { mode: Mode::Around, radius: 0.0, ..settings(3) };
    let around = Campaign::new(CrystalVae::shipped().unwrap(), around, &seeds).unwrap();
    let mu = around.vae.codes_of(&seeds.iter().collect::<Vec<_>>()).unwrap().rows();
    let codes = around.codes(0, 12, 12, 5).rows();
    for j in 0..12 {
        let want = &mu[(j / 3) % 2];
        assert!(
            codes[j].iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max) < 1e-6,
            "code {j} is not around seed {}",
            (j / 3) % 2
        );
    }
    // Runs without targets never oversample, and 0 is refused with a reason.
    let plain =
        Campaign::new(CrystalVae::shipped().unwrap(), CampaignSettings { oversample: 3, ..Default::default() }, &[])
            .unwrap();
    assert_eq!(plain.oversample(), 1);
    let err = Campaign::new(CrystalVae::shipped().unwrap(), settings(0), &[]).err().unwrap();
    assert!(err.contains("oversample"), "{err}");
}

#[test]
fn latent_optimisation_brings_codes_into_the_windows_interior_even_from_metallic_codes() {
    use geode::ml::generative::sample::Goal;
    use geode::search::generate::CampaignSettings;
    use tch::{Kind, Tensor};
    geode::ml::init_threads(1);
    let vae = CrystalVae::shipped().unwrap();
    let gap = |z: &Tensor| {
        Vec::<f64>::try_from(tch::no_grad(|| vae.head_properties_unclamped(z)).select(1, 1).to_kind(Kind::Double))
            .unwrap()
    };
    let z = vae.prior_codes(300, 5);
    // Codes the band-gap head calls metallic (below 0 before the clamp): the clamp would leave them no gradient.
    let metallic: Vec<i64> = gap(&z).iter().enumerate().filter(|(_, g)| **g < 0.0).map(|(i, _)| i as i64).collect();
    assert!(metallic.len() >= 20, "only {} metallic prior codes", metallic.len());
    let z0 = z.index_select(0, &Tensor::from_slice(&metallic));
    let s = CampaignSettings::default();
    let moved = vae
        .optimise_latent(
            &z0,
            &[Goal::Window { head: 1, lo: 1.5, hi: 2.0 }],
            s.opt_steps,
            s.opt_lr,
            s.prior_weight,
            s.opt_steps,
        )
        .pop()
        .unwrap();
    let after = gap(&moved);
    // With the clamped head none of them would move; 100 steps bring most of them in (35 of 47 when written).
    let inside: Vec<f64> = after.iter().copied().filter(|g| (1.5..=2.0).contains(g)).collect();
    assert!(inside.len() as f64 >= 0.6 * after.len() as f64, "{} of {} inside: {after:?}", inside.len(), after.len());
    // Aimed at the chance of landing inside, not at the nearest edge: those inside sit in the middle half.
    let mean = inside.iter().sum::<f64>() / inside.len() as f64;
    assert!((1.625..=1.875).contains(&mean), "mean head {mean}");
}

#[test]
fn one_sided_targets_move_codes_without_turning_them_into_nan() {
    // `band_gap > 2` is a window with an infinite upper bound; its log-CDF's gradient at ±∞ is 0 · ∞,
    // which once made every optimised code NaN ("the lattice head gave no cell" for every crystal).
    use geode::search::generate::{Campaign, CampaignSettings, PropertyTarget};
    geode::ml::init_threads(1);
    for target in ["band_gap > 2", "formation_energy_per_atom < -1.5"] {
        let settings = CampaignSettings {
            targets: vec![PropertyTarget::parse(target).unwrap()],
            oversample: 1,
            ..Default::default()
        };
        let campaign = Campaign::new(CrystalVae::shipped().unwrap(), settings, &[]).unwrap();
        let codes = campaign.codes(0, 32, 32, 3);
        assert!(codes.rows().iter().flatten().all(|x| x.is_finite()), "{target}: non-finite codes");
        let heads = campaign.vae.property_heads(&codes, true);
        let inside =
            heads.iter().filter(|h| if target.starts_with("band_gap") { h[1] > 2.0 } else { h[0] < -1.5 }).count();
        assert!(inside >= 28, "{target}: {inside} of 32 codes inside after optimisation");
    }
}

#[test]
fn targeted_codes_that_optimisation_leaves_outside_the_window_are_drawn_again() {
    use geode::ml::generative::sample::Goal;
    use geode::search::generate::{Campaign, CampaignSettings};
    geode::ml::init_threads(1);
    let settings = CampaignSettings {
        targets: vec![geode::search::generate::PropertyTarget::parse("band_gap in [1.5, 2.0]").unwrap()],
        oversample: 1,
        ..Default::default()
    };
    let campaign = Campaign::new(CrystalVae::shipped().unwrap(), settings, &[]).unwrap();
    let inside =
        |z: &Codes| campaign.vae.property_heads(z, true).iter().filter(|h| (1.5..=2.0).contains(&h[1])).count();
    // One optimisation of the first draw (the run's prior samples) leaves some codes outside: those the
    // head reads as metals where it is flat, so the prior's pull wins (about one in eight when written).
    let s = &campaign.settings;
    let first = campaign.vae.optimise(
        &campaign.vae.prior(128, 7),
        &[Goal::Window { head: 1, lo: 1.5, hi: 2.0 }],
        s.opt_steps,
        s.opt_lr,
        s.prior_weight,
    );
    let once = inside(&first);
    assert!(once < 124, "{once} of 128 inside after one optimisation: nothing left to redraw");
    // The campaign's codes start from the same draw and redraw the misses.
    let codes = campaign.codes(0, 128, 128, 7);
    let redrawn = inside(&codes);
    assert!(redrawn >= 126 && redrawn > once, "{redrawn} of 128 inside with redraws, {once} without");
    // Codes that landed the first time are kept as they were.
    let same = codes
        .rows()
        .iter()
        .zip(first.rows())
        .filter(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>() < 1e-6)
        .count();
    assert!(same >= once, "{same} codes unchanged, {once} landed the first time");
}
