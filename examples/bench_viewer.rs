//! Viewer benchmark: frame time of the crystal renderer for ~1k, ~10k and ~100k atoms (supercells of
//! rock salt), offscreen at 1280×800 with 4× MSAA, on whatever wgpu adapter the machine offers
//! (Mesa's lavapipe on a machine without a GPU). Also times scene building (boundary atoms, bonds).
//!
//! `cargo run --release --example bench_viewer [-- --frames 20 --cells 5,11,23]`

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
    let frames: usize = args.iter().position(|a| a == "--frames").and_then(|i| args.get(i + 1)).and_then(|s| s.parse().ok()).unwrap_or(10);
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions { power_preference: wgpu::PowerPreference::HighPerformance, ..Default::default() })).expect("no wgpu adapter");
    let info = adapter.get_info();
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default())).expect("no device");
    let mut r = ViewerRenderer::new(&device, None);
    let s = rocksalt();
    let mut rows = Vec::new();
    let cells: Vec<u32> = args.iter().position(|a| a == "--cells").and_then(|i| args.get(i + 1)).map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect()).unwrap_or_else(|| vec![5, 11, 23]);
    for n in cells {
        let opts = SceneOptions { supercell: [n, n, n], ..Default::default() };
        let t = Instant::now();
        let scene = build_scene(&s, &opts);
        let build_ms = t.elapsed().as_secs_f64() * 1e3;
        let data = DrawData::from_scene(&scene, Style::BallAndStick, None, &[], [0.7, 0.7, 0.7, 1.0]);
        let cam = Camera::framing(scene.center, scene.radius, false);
        // Warm up (pipelines, first allocation), then time whole frames including readback.
        r.render_to_rgba(&device, &queue, &data, &cam, [1280, 800], [0.0, 0.0, 0.0, 1.0]).unwrap();
        let t = Instant::now();
        for i in 0..frames {
            let mut c = cam;
            c.orbit(i as f32 * 3.0, 0.0);
            r.render_to_rgba(&device, &queue, &data, &c, [1280, 800], [0.0, 0.0, 0.0, 1.0]).unwrap();
        }
        let frame_ms = t.elapsed().as_secs_f64() * 1e3 / frames as f64;
        rows.push(serde_json::json!({"supercell": n, "atoms": scene.atoms.len(), "bond_halves": data.bonds.len(), "scene_build_ms": build_ms, "frame_ms": frame_ms, "fps": 1000.0 / frame_ms}));
        eprintln!("{}", rows.last().unwrap());
    }
    println!("{}", serde_json::json!({"adapter": info.name, "backend": format!("{:?}", info.backend), "device_type": format!("{:?}", info.device_type), "size": [1280, 800], "msaa": 4, "frames": frames, "rows": rows}));
}
