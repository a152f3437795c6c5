//! The crystal viewer's renderer, offscreen, with pixel assertions: an atom renders its element
//! colour at the image centre, the camera moves it, nearer atoms hide farther ones (true depth),
//! bonds appear between atoms within the cutoff and not beyond, and the cell is drawn. Bonds are
//! ray-cast cylinders: their width on screen, their end caps and their anti-aliased edges are checked
//! against the camera's own projection.
//! Runs on any wgpu adapter, including Mesa's software ones (lavapipe, llvmpipe).

use eframe::wgpu;
use geode::crystal::bonds::BondRule;
use geode::crystal::{Element, Lattice, Structure};
use geode::studio::viewer::camera::Camera;
use geode::studio::viewer::render::{BondInstance, DrawData, ViewerRenderer};
use geode::studio::viewer::scene::{ColorScheme, SceneOptions, Style, build_scene, element_color};
use nalgebra::Vector3;

const SIZE: [u32; 2] = [160, 160];
const BG: [f64; 4] = [0.0, 0.0, 0.0, 1.0];

fn device() -> (wgpu::Device, wgpu::Queue) {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::LowPower,
        ..Default::default()
    }))
    .expect("a wgpu adapter (install mesa-vulkan-drivers for lavapipe, or set WGPU_BACKEND=gl)");
    pollster::block_on(
        adapter.request_device(&wgpu::DeviceDescriptor { label: Some("viewer tests"), ..Default::default() }),
    )
    .expect("a wgpu device")
}

fn structure(a: f64, sites: &[(&str, [f64; 3])]) -> Structure {
    let species = sites.iter().map(|(s, _)| Element::from_symbol(s).unwrap()).collect();
    let frac = sites.iter().map(|(_, f)| Vector3::new(f[0], f[1], f[2])).collect();
    Structure::from_frac(Lattice::cubic(a).unwrap(), species, frac).unwrap()
}

fn pixel(img: &[u8], x: u32, y: u32) -> [u8; 3] {
    let i = ((y * SIZE[0] + x) * 4) as usize;
    [img[i], img[i + 1], img[i + 2]]
}

fn is_background(p: [u8; 3]) -> bool {
    p.iter().all(|&c| c < 8)
}

/// The direction of a colour (unit RGB vector), to compare hues independent of shading.
fn hue(c: [f32; 3]) -> [f32; 3] {
    let n = (c[0] * c[0] + c[1] * c[1] + c[2] * c[2]).sqrt().max(1e-6);
    c.map(|x| x / n)
}

fn srgb_to_linear(p: [u8; 3]) -> [f32; 3] {
    p.map(|v| {
        let x = v as f32 / 255.0;
        if x <= 0.04045 { x / 12.92 } else { ((x + 0.055) / 1.055).powf(2.4) }
    })
}

fn render(r: &mut ViewerRenderer, dq: &(wgpu::Device, wgpu::Queue), data: &DrawData, cam: &Camera) -> Vec<u8> {
    r.render_to_rgba(&dq.0, &dq.1, data, cam, SIZE, BG).unwrap()
}

fn opts(show_bonds: bool) -> SceneOptions {
    SceneOptions {
        style: Style::BallAndStick,
        colors: ColorScheme::Vesta,
        supercell: [1, 1, 1],
        boundary_atoms: false,
        bond_rule: BondRule::default(),
        show_bonds,
        show_cell: false,
    }
}

#[test]
fn viewer_pixels() {
    let dq = device();
    let mut r = ViewerRenderer::new(&dq.0, None);

    // 1. A single Na atom in the middle of a 10 Å cell: its colour at the centre, background at the corner.
    let na = structure(10.0, &[("Na", [0.5, 0.5, 0.5])]);
    let scene = build_scene(&na, &opts(false));
    let data = DrawData::from_scene(&scene, Style::BallAndStick, None, &[], [1.0; 4]);
    let mut cam = Camera::framing(scene.atoms[0].pos, 2.0, true);
    let img = render(&mut r, &dq, &data, &cam);
    let c = pixel(&img, SIZE[0] / 2, SIZE[1] / 2);
    assert!(!is_background(c), "centre pixel is background: {c:?}");
    let want = element_color(Element::from_symbol("Na").unwrap(), ColorScheme::Vesta);
    let (h, w) = (hue(srgb_to_linear(c)), hue([want[0], want[1], want[2]]));
    let cos = h[0] * w[0] + h[1] * w[1] + h[2] * w[2];
    assert!(cos > 0.97, "centre {c:?} does not have Na's colour {want:?} (cos {cos})");
    assert!(is_background(pixel(&img, 2, 2)), "corner is not background");

    // 2. Off-centre atom: it appears right of centre, and on the left after turning the camera 180°.
    let cam_target = [5.0, 5.0, 5.0];
    cam = Camera::framing(cam_target, 6.0, true);
    cam.look_along([0.0, 0.0, -1.0], [0.0, 1.0, 0.0]);
    let off = structure(10.0, &[("Na", [0.75, 0.5, 0.5])]);
    let scene = build_scene(&off, &opts(false));
    let data = DrawData::from_scene(&scene, Style::BallAndStick, None, &[], [1.0; 4]);
    let centroid_x = |img: &[u8]| {
        let (mut sx, mut n) = (0.0f64, 0.0f64);
        for y in 0..SIZE[1] {
            for x in 0..SIZE[0] {
                if !is_background(pixel(img, x, y)) {
                    sx += x as f64;
                    n += 1.0;
                }
            }
        }
        sx / n.max(1.0)
    };
    let before = centroid_x(&render(&mut r, &dq, &data, &cam));
    cam.look_along([0.0, 0.0, 1.0], [0.0, 1.0, 0.0]);
    let after = centroid_x(&render(&mut r, &dq, &data, &cam));
    assert!(before > SIZE[0] as f64 * 0.6 && after < SIZE[0] as f64 * 0.4, "atom at x={before} then x={after}");

    // 3. Depth: an O in front of a Na on the same line of sight covers it, although the Na is drawn
    //    after it (without a depth test the Na would win).
    let pair = structure(10.0, &[("O", [0.5, 0.5, 0.7]), ("Na", [0.5, 0.5, 0.3])]);
    let scene = build_scene(&pair, &opts(false));
    let data = DrawData::from_scene(&scene, Style::SpaceFilling, None, &[], [1.0; 4]);
    let mut cam = Camera::framing([5.0, 5.0, 5.0], 4.0, true);
    cam.look_along([0.0, 0.0, -1.0], [0.0, 1.0, 0.0]); // looking down −z: the O at z = 7 Å is nearer
    let c = pixel(&render(&mut r, &dq, &data, &cam), SIZE[0] / 2, SIZE[1] / 2);
    let o = element_color(Element::from_symbol("O").unwrap(), ColorScheme::Vesta);
    let cos = {
        let (h, w) = (hue(srgb_to_linear(c)), hue([o[0], o[1], o[2]]));
        h[0] * w[0] + h[1] * w[1] + h[2] * w[2]
    };
    assert!(cos > 0.95, "the nearer O should cover the Na: {c:?}");

    // 4. Bonds: Na–Cl at 2.8 Å is bonded (pixels between the atoms), at 5 Å it is not.
    for (d, bonded) in [(2.8, true), (5.0, false)] {
        let a = 12.0;
        let s = structure(a, &[("Na", [0.5 - d / (2.0 * a), 0.5, 0.5]), ("Cl", [0.5 + d / (2.0 * a), 0.5, 0.5])]);
        let scene = build_scene(&s, &SceneOptions { bond_rule: BondRule::Vesta, ..opts(true) });
        assert_eq!(scene.bonds.iter().any(|b| b.atom_b.is_some()), bonded);
        let data = DrawData::from_scene(&scene, Style::BallAndStick, None, &[], [1.0; 4]);
        let mut cam = Camera::framing([6.0, 6.0, 6.0], 4.0, true);
        cam.look_along([0.0, 0.0, -1.0], [0.0, 1.0, 0.0]);
        let img = render(&mut r, &dq, &data, &cam);
        // The midpoint lies between the two spheres (radii 0.4 × atomic radius < 1.4 Å).
        let mid = pixel(&img, SIZE[0] / 2, SIZE[1] / 2);
        assert_eq!(!is_background(mid), bonded, "d = {d} Å: midpoint pixel {mid:?}");
    }

    // 5. The unit cell is drawn as lines: some non-background pixels with an empty scene of atoms.
    let scene =
        build_scene(&structure(4.0, &[("Na", [0.0, 0.0, 0.0])]), &SceneOptions { show_cell: true, ..opts(false) });
    let mut data = DrawData::from_scene(&scene, Style::BallAndStick, None, &[], [1.0; 4]);
    data.atoms.clear();
    let img = render(&mut r, &dq, &data, &Camera::framing(scene.center, scene.radius, false));
    let lit = img.chunks_exact(4).filter(|p| p[0] > 100).count();
    assert!(lit > 100, "cell edges cover only {lit} pixels");
}

/// One red bond (a single cylinder, no atoms) from `a` to `b` (Å) of `radius` Å.
fn lone_bond(a: [f32; 3], b: [f32; 3], radius: f32) -> DrawData {
    DrawData {
        bonds: vec![BondInstance { start: a, radius, end: b, color: [1.0, 0.0, 0.0, 1.0] }],
        ..Default::default()
    }
}

fn is_red(p: [u8; 3]) -> bool {
    p[0] > 40 && p[1] < p[0] / 3 && p[2] < p[0] / 3
}

#[test]
fn bond_cylinders_have_the_projected_width_closed_ends_and_smooth_edges() {
    let dq = device();
    let mut r = ViewerRenderer::new(&dq.0, None);
    let size = [SIZE[0] as f32, SIZE[1] as f32];
    for orthographic in [true, false] {
        // 1. Side-on, along x: red within the radius of the axis, background beyond it, on both sides.
        let mut cam = Camera::framing([0.0; 3], 1.5, orthographic);
        cam.look_along([0.0, 0.0, -1.0], [0.0, 1.0, 0.0]);
        let radius = 0.25;
        let img = render(&mut r, &dq, &lone_bond([-1.0, 0.0, 0.0], [1.0, 0.0, 0.0], radius), &cam);
        let c = cam.project([0.0; 3], size).unwrap();
        let r_px = cam.project([0.0, radius, 0.0], size).unwrap()[1] - c[1];
        assert!(r_px.abs() > 6.0, "radius on screen {r_px} px");
        let (cx, cy) = (c[0].round() as u32, c[1]);
        for (offset, inside) in [(0.0, true), (0.6, true), (-0.6, true), (1.6, false), (-1.6, false)] {
            let y = (cy + offset * r_px).round() as u32;
            let p = pixel(&img, cx, y);
            assert_eq!(is_red(p), inside, "orthographic {orthographic}: pixel {offset} radii from the axis is {p:?}");
            assert_eq!(
                is_background(p),
                !inside,
                "orthographic {orthographic}: pixel {offset} radii from the axis is {p:?}"
            );
        }
        // Nothing beyond the ends (caps are flat, not extended).
        let end = cam.project([1.0 + 2.0 * radius, 0.0, 0.0], size).unwrap();
        assert!(
            is_background(pixel(&img, end[0].round() as u32, cy.round() as u32)),
            "orthographic {orthographic}: past the end"
        );

        // 2. End-on, pointing at the viewer, with no atom to hide the end: the cap closes the tube,
        //    so the centre is red (a hollow tube would show its far opening there).
        let img = render(&mut r, &dq, &lone_bond([0.0, 0.0, -1.0], [0.0, 0.0, 0.5], radius), &cam);
        let p = pixel(&img, cx, cy.round() as u32);
        assert!(is_red(p), "orthographic {orthographic}: end-on centre {p:?}");
        let beside = pixel(&img, (c[0] + 2.5 * r_px.abs()).round() as u32, cy.round() as u32);
        assert!(is_background(beside), "orthographic {orthographic}: beside the end-on bond {beside:?}");

        // 3. A bond thinner than a pixel, slightly tilted, stays a continuous line: edge pixels
        //    are partly covered (MSAA sample mask) instead of dropping out where the axis misses a
        //    pixel centre, as a hard-edged impostor would.
        let thin = 0.15 * radius / r_px.abs(); // 0.15 px
        let img = render(&mut r, &dq, &lone_bond([-1.0, -0.05, 0.0], [1.0, 0.05, 0.0], thin), &cam);
        let (x0, x1) = (
            cam.project([-0.9, 0.0, 0.0], size).unwrap()[0] as u32,
            cam.project([0.9, 0.0, 0.0], size).unwrap()[0] as u32,
        );
        let columns = x1 - x0;
        let mut seen = 0;
        let mut brightest = 0;
        for x in x0..x1 {
            let column: Vec<u8> = (0..SIZE[1]).map(|y| pixel(&img, x, y)[0]).collect();
            let m = *column.iter().max().unwrap();
            seen += (m > 8) as u32;
            brightest = brightest.max(m);
        }
        assert!(
            seen * 10 >= columns * 9,
            "orthographic {orthographic}: a sub-pixel bond shows in {seen} of {columns} columns"
        );
        let full = pixel(
            &render(&mut r, &dq, &lone_bond([-1.0, 0.0, 0.0], [1.0, 0.0, 0.0], radius), &cam),
            cx,
            cy.round() as u32,
        )[0];
        assert!(
            brightest < full,
            "orthographic {orthographic}: a partly covered pixel ({brightest}) is dimmer than a covered one ({full})"
        );
    }
}
