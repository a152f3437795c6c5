//! The crystal VAE's own property heads for structure files: each crystal is encoded by the
//! generator's encoder (μ of its code) and the heads read formation energy (eV/atom) and band gap (eV,
//! unclamped) from that code. These are the values the cycle-consistency choice of targeted runs
//! (`--oversample`) ranks decoded crystals by; probes compare them with the forward model's
//! predictions (`geode predict`).
//!
//!     cargo run --release --example generator_heads -- gen/*.cif > heads.tsv   # file, index, E_f, gap
use anyhow::Context;
use geode::ml::generative::CrystalVae;

fn main() -> anyhow::Result<()> {
    tch::set_num_threads(std::thread::available_parallelism().map_or(1, |n| n.get()) as i32);
    let vae = CrystalVae::open("crystal-vae")?;
    println!("file\tindex\thead_formation_energy_per_atom\thead_band_gap");
    for f in std::env::args().skip(1) {
        let structures =
            geode::io::read_structures(std::path::Path::new(&f)).with_context(|| format!("cannot read {f}"))?;
        let mut index = 0;
        for chunk in structures.chunks(256) {
            let mu = vae.encode_structures(chunk.iter()).map_err(|e| anyhow::anyhow!("{f}: {e}"))?;
            let heads = Vec::<f32>::try_from(tch::no_grad(|| vae.head_properties_unclamped(&mu)).flatten(0, -1))?;
            for h in heads.chunks(2) {
                println!("{f}\t{index}\t{}\t{}", h[0], h[1]);
                index += 1;
            }
        }
    }
    Ok(())
}
