//! Viewer benchmark: frame time of the crystal renderer for ~1k, ~10k and ~100k atoms (supercells of
//! rock salt), offscreen at 1280×800 with 4× MSAA, on whatever wgpu adapter the machine offers
//! (Mesa's lavapipe on a machine without a GPU). Also times scene building (boundary atoms, bonds).
//!
//! Two frame times per scene:
//! - `export_frame_ms`: `render_to_rgba`, the picture-export path: uploads the scene, makes the
//!   targets, renders and reads the image back, every frame.
//! - `live_frame_ms` (median, with p95): the studio's path while the camera orbits: the scene is
//!   uploaded once, each frame renders the view with a new camera and waits for the GPU to finish.
//!
//! `cargo run --release --example bench_viewer [-- --frames 20 --live-frames 120 --cells 5,11,23 --size 1280x800 --no-bonds]`

use std::time::Instant;

use eframe::wgpu;
use geode::crystal::{Element, Lattice, Structure};
use geode::studio::viewer::camera::Camera;
use geode::studio::viewer::render::{DrawData, ViewerRenderer};
use geode::studio::viewer::scene::{SceneOptions, Style, build_scene};
use nalgebra::Vector3;

fn rocksalt() -> Structure {
    let na = Element::from_symbol("Na").unwrap();
    let cl = Element::from_symbol("Cl").unwrap();
    let mut species = Vec::new();
    let mut frac = Vec::new();
    for f in [[0.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5]] {
        species.push(na);
        frac.push(Vector3::new(f[0], f[1], f[2]));
        species.push(cl);
        frac.push(Vector3::new(f[0] + 0.5, f[1], f[2]));
    }
    Structure::from_frac(Lattice::cubic(5.64).unwrap(), species, frac).unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let frames: usize = arg("--frames").and_then(|s| s.parse().ok()).unwrap_or(10);
    let live_frames: usize = arg("--live-frames").and_then(|s| s.parse().ok()).unwrap_or(60).max(1);
    let size: [u32; 2] = arg("--size")
        .and_then(|s| {
            let v: Vec<u32> = s.split('x').filter_map(|x| x.parse().ok()).collect();
            (v.len() == 2).then(|| [v[0], v[1]])
        })
        .unwrap_or([1280, 800]);
    // `--no-bonds`: atoms (and the cell) only, to see what the bonds cost.
    let no_bonds = args.iter().any(|a| a == "--no-bonds");
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        ..Default::default()
    }))
    .expect("no wgpu adapter");
    let info = adapter.get_info();
    let (device, queue) =
        pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default())).expect("no device");
    let mut r = ViewerRenderer::new(&device, None);
    let s = rocksalt();
    let mut rows = Vec::new();
    let cells: Vec<u32> = arg("--cells")
        .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| vec![5, 11, 23]);
    for n in cells {
        let opts = SceneOptions { supercell: [n, n, n], show_bonds: !no_bonds, ..Default::default() };
        let t = Instant::now();
        let scene = build_scene(&s, &opts);
        let build_ms = t.elapsed().as_secs_f64() * 1e3;
        let data = DrawData::from_scene(&scene, Style::BallAndStick, None, &[], [0.7, 0.7, 0.7, 1.0]);
        let cam = Camera::framing(scene.center, scene.radius, false);
        // Warm up (pipelines, first allocation), then time whole frames including readback.
        r.render_to_rgba(&device, &queue, &data, &cam, size, [0.0, 0.0, 0.0, 1.0]).unwrap();
        let t = Instant::now();
        for i in 0..frames {
            let mut c = cam;
            c.orbit(i as f32 * 3.0, 0.0);
            r.render_to_rgba(&device, &queue, &data, &c, size, [0.0, 0.0, 0.0, 1.0]).unwrap();
        }
        let frame_ms = t.elapsed().as_secs_f64() * 1e3 / frames.max(1) as f64;
        // The studio's path: the scene stays on the GPU; each frame only the camera changes.
        const LIVE_VIEW: u64 = 1;
        r.set_scene(&device, LIVE_VIEW, u64::from(n), &data);
        let mut live: Vec<f64> = (0..=live_frames)
            .map(|i| {
                let t = Instant::now();
                let mut c = cam;
                c.orbit(i as f32 * 3.0 + 1.0, 0.0);
                let mut encoder =
                    device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("bench live frame") });
                r.render(&device, &queue, &mut encoder, LIVE_VIEW, &c, size, [0.0, 0.0, 0.0, 1.0]);
                let index = queue.submit([encoder.finish()]);
                device
                    .poll(wgpu::PollType::Wait {
                        submission_index: Some(index),
                        timeout: Some(std::time::Duration::from_secs(60)),
                    })
                    .expect("GPU did not finish");
                t.elapsed().as_secs_f64() * 1e3
            })
            .skip(1) // the first frame makes the view's targets
            .collect();
        live.sort_by(f64::total_cmp);
        let live_median = live[live.len() / 2];
        let live_p95 = live[((live.len() as f64 * 0.95) as usize).min(live.len() - 1)];
        rows.push(serde_json::json!({"supercell": n, "atoms": scene.atoms.len(), "bond_halves": data.bonds.len(), "scene_build_ms": build_ms, "export_frame_ms": frame_ms, "live_frame_ms": live_median, "live_p95_ms": live_p95, "live_fps": 1000.0 / live_median}));
        eprintln!("{}", rows.last().unwrap());
    }
    println!(
        "{}",
        serde_json::json!({"adapter": info.name, "backend": format!("{:?}", info.backend), "device_type": format!("{:?}", info.device_type), "size": size, "msaa": geode::studio::viewer::render::MSAA, "frames": frames, "live_frames": live_frames, "rows": rows})
    );
}
