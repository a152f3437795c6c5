//! The wgpu renderer of the crystal viewer. Each view renders into its own offscreen target (4× MSAA
//! colour + depth, resolved to an `Rgba8Unorm` texture holding sRGB-encoded values); inside egui the
//! resolved image is blitted into egui's pass, and PNG export reads the same image back. egui's own
//! pass has no depth buffer, which is why 3D never draws into it directly.

use std::collections::HashMap;

use bytemuck::{Pod, Zeroable};
use eframe::wgpu;
use eframe::wgpu::util::DeviceExt as _;
use glam::Vec3;

use super::camera::Camera;
use super::scene::{Scene, Style};

/// Colour format of the offscreen targets.
pub const OFFSCREEN_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;
pub const DEPTH_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Depth32Float;
pub const MSAA: u32 = 4;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Globals {
    view: [[f32; 4]; 4],
    proj: [[f32; 4]; 4],
    light_dir: [f32; 4],
    params: [f32; 4],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug, PartialEq)]
pub struct AtomInstance {
    pub center: [f32; 3],
    pub radius: f32,
    pub color: [f32; 4],
    pub flags: u32,
    pub _pad: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug, PartialEq)]
pub struct BondInstance {
    pub start: [f32; 3],
    pub radius: f32,
    pub end: [f32; 3],
    pub color: [f32; 4],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug, PartialEq)]
pub struct FlatVertex {
    pub pos: [f32; 3],
    pub normal: [f32; 3],
    pub color: [f32; 4],
}

/// Everything of a scene the GPU needs, built on the CPU (cheap to rebuild on a style change).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DrawData {
    pub atoms: Vec<AtomInstance>,
    pub bonds: Vec<BondInstance>,
    pub lines: Vec<FlatVertex>,
    pub triangles: Vec<FlatVertex>,
}

/// Bond radius (Å) per style.
fn bond_radius(style: Style) -> f32 {
    match style {
        Style::Wireframe => 0.035,
        _ => 0.11,
    }
}

impl DrawData {
    /// Instances for a scene; `hovered` and `selected` index `scene.atoms`.
    pub fn from_scene(
        scene: &Scene,
        style: Style,
        hovered: Option<usize>,
        selected: &[usize],
        cell_color: [f32; 4],
    ) -> DrawData {
        let mut d = DrawData::default();
        for (i, a) in scene.atoms.iter().enumerate() {
            let flags = (hovered == Some(i)) as u32 | ((selected.contains(&i) as u32) << 1);
            d.atoms.push(AtomInstance { center: a.pos, radius: a.radius, color: a.color, flags, _pad: [0; 3] });
        }
        let r = bond_radius(style);
        for b in &scene.bonds {
            let mid = [0, 1, 2].map(|k| 0.5 * (b.start[k] + b.end[k]));
            d.bonds.push(BondInstance { start: b.start, radius: r, end: mid, color: b.color_a });
            d.bonds.push(BondInstance { start: mid, radius: r, end: b.end, color: b.color_b });
        }
        for e in &scene.cell_edges {
            d.lines.push(FlatVertex { pos: e[0], normal: [0.0; 3], color: cell_color });
            d.lines.push(FlatVertex { pos: e[1], normal: [0.0; 3], color: cell_color });
        }
        for p in &scene.polyhedra {
            for tri in convex_hull_triangles(&p.vertices) {
                let [a, b, c] = tri.map(|i| Vec3::from(p.vertices[i]));
                let n = (b - a).cross(c - a).normalize_or_zero().to_array();
                for v in [a, b, c] {
                    d.triangles.push(FlatVertex { pos: v.to_array(), normal: n, color: p.color });
                }
            }
        }
        d
    }
}

/// Faces of the convex hull of a few points (brute force over triples, fine for coordination shells
/// of ≤ 16 vertices), each oriented outwards.
pub fn convex_hull_triangles(pts: &[[f32; 3]]) -> Vec<[usize; 3]> {
    let p: Vec<Vec3> = pts.iter().map(|x| Vec3::from(*x)).collect();
    let n = p.len();
    if !(4..=24).contains(&n) {
        return Vec::new();
    }
    let centroid = p.iter().copied().sum::<Vec3>() / n as f32;
    let scale = p.iter().map(|q| (*q - centroid).length()).fold(0.0, f32::max).max(1e-6);
    let eps = 1e-4 * scale;
    let mut faces = Vec::new();
    for i in 0..n {
        for j in i + 1..n {
            for k in j + 1..n {
                let mut nrm = (p[j] - p[i]).cross(p[k] - p[i]);
                if nrm.length() < 1e-6 * scale * scale {
                    continue;
                }
                nrm = nrm.normalize();
                let d: Vec<f32> = p.iter().map(|q| nrm.dot(*q - p[i])).collect();
                let above = d.iter().any(|&x| x > eps);
                let below = d.iter().any(|&x| x < -eps);
                if above && below {
                    continue;
                }
                // Skip a triple whose plane holds a coplanar point with a smaller index pattern that
                // already produced this face (coplanar faces are triangulated more than once otherwise).
                let coplanar: Vec<usize> = (0..n).filter(|&m| d[m].abs() <= eps).collect();
                if coplanar.len() > 3 && !is_fan_triangle(&p, &coplanar, nrm, [i, j, k]) {
                    continue;
                }
                let outward = nrm.dot(p[i] - centroid) > 0.0;
                faces.push(if outward { [i, j, k] } else { [i, k, j] });
            }
        }
    }
    faces
}

/// For a planar face with more than three vertices, keep only the triangles of a fan from its first
/// vertex (in angular order), so each face is drawn once.
fn is_fan_triangle(p: &[Vec3], face: &[usize], nrm: Vec3, tri: [usize; 3]) -> bool {
    let c = face.iter().map(|&m| p[m]).sum::<Vec3>() / face.len() as f32;
    let u = (p[face[0]] - c).normalize_or_zero();
    let v = nrm.cross(u);
    let mut order: Vec<(f32, usize)> = face.iter().map(|&m| ((p[m] - c).dot(v).atan2((p[m] - c).dot(u)), m)).collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0));
    let ids: Vec<usize> = order.iter().map(|o| o.1).collect();
    let mut t = tri;
    t.sort_unstable();
    (1..ids.len() - 1).any(|q| {
        let mut f = [ids[0], ids[q], ids[q + 1]];
        f.sort_unstable();
        f == t
    })
}

/// GPU buffers of one view's draw data.
struct GpuScene {
    atoms: Option<wgpu::Buffer>,
    n_atoms: u32,
    bonds: Option<wgpu::Buffer>,
    n_bonds: u32,
    lines: Option<wgpu::Buffer>,
    n_lines: u32,
    triangles: Option<wgpu::Buffer>,
    n_triangles: u32,
}

/// One view's offscreen target.
struct Target {
    size: [u32; 2],
    msaa: wgpu::TextureView,
    resolve: wgpu::Texture,
    resolve_view: wgpu::TextureView,
    depth: wgpu::TextureView,
    blit_bind: Option<wgpu::BindGroup>,
}

/// Per-view state: target, buffers, uniform.
struct View {
    target: Option<Target>,
    scene: Option<GpuScene>,
    scene_version: u64,
    uniform: wgpu::Buffer,
    bind: wgpu::BindGroup,
    /// What the target holds now (globals bytes, background, scene version): an unchanged view is not
    /// re-rendered, so idle frames cost only the blit (the software renderer draws a 10k-atom scene in
    /// seconds).
    rendered: Option<(Vec<u8>, [u64; 4], u64)>,
}

/// Pipelines and per-view resources. Installed once in egui-wgpu's callback resources.
pub struct ViewerRenderer {
    bind_layout: wgpu::BindGroupLayout,
    atoms: wgpu::RenderPipeline,
    bonds: wgpu::RenderPipeline,
    lines: wgpu::RenderPipeline,
    triangles: wgpu::RenderPipeline,
    blit: Option<wgpu::RenderPipeline>,
    blit_layout: wgpu::BindGroupLayout,
    sampler: wgpu::Sampler,
    views: HashMap<u64, View>,
}

fn shader(device: &wgpu::Device, name: &str, body: &str) -> wgpu::ShaderModule {
    let src = format!("{}\n{}", include_str!("../../../shaders/common.wgsl"), body);
    device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(name),
        source: wgpu::ShaderSource::Wgsl(src.into()),
    })
}

impl ViewerRenderer {
    /// Build the pipelines; `blit_format` is the format of the pass the image is blitted into
    /// (egui's target), or `None` when only offscreen renders are needed (tests, exports).
    pub fn new(device: &wgpu::Device, blit_format: Option<wgpu::TextureFormat>) -> ViewerRenderer {
        let bind_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("viewer globals"),
            entries: &[wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            }],
        });
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("viewer"),
            bind_group_layouts: &[Some(&bind_layout)],
            immediate_size: 0,
        });
        let depth = |write: bool| wgpu::DepthStencilState {
            format: DEPTH_FORMAT,
            depth_write_enabled: Some(write),
            depth_compare: Some(wgpu::CompareFunction::LessEqual),
            stencil: Default::default(),
            bias: Default::default(),
        };
        let ms = wgpu::MultisampleState { count: MSAA, mask: !0, alpha_to_coverage_enabled: false };
        let opaque = [Some(wgpu::ColorTargetState {
            format: OFFSCREEN_FORMAT,
            blend: None,
            write_mask: wgpu::ColorWrites::ALL,
        })];
        let blended = [Some(wgpu::ColorTargetState {
            format: OFFSCREEN_FORMAT,
            blend: Some(wgpu::BlendState::ALPHA_BLENDING),
            write_mask: wgpu::ColorWrites::ALL,
        })];

        let atoms_sh = shader(device, "atoms", include_str!("../../../shaders/atoms.wgsl"));
        let atom_attrs = wgpu::vertex_attr_array![0 => Float32x3, 1 => Float32, 2 => Float32x4, 3 => Uint32];
        let atoms = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("atoms"),
            layout: Some(&layout),
            vertex: wgpu::VertexState {
                module: &atoms_sh,
                entry_point: Some("vs_main"),
                compilation_options: Default::default(),
                buffers: &[Some(wgpu::VertexBufferLayout {
                    array_stride: std::mem::size_of::<AtomInstance>() as u64,
                    step_mode: wgpu::VertexStepMode::Instance,
                    attributes: &atom_attrs,
                })],
            },
            primitive: wgpu::PrimitiveState { topology: wgpu::PrimitiveTopology::TriangleStrip, ..Default::default() },
            depth_stencil: Some(depth(true)),
            multisample: ms,
            fragment: Some(wgpu::FragmentState {
                module: &atoms_sh,
                entry_point: Some("fs_main"),
                compilation_options: Default::default(),
                targets: &opaque,
            }),
            multiview_mask: None,
            cache: None,
        });

        let bonds_sh = shader(device, "bonds", include_str!("../../../shaders/bonds.wgsl"));
        let bond_attrs = wgpu::vertex_attr_array![1 => Float32x3, 2 => Float32, 3 => Float32x3, 4 => Float32x4];
        // The attribute offsets are packed; the instance structs must be too (checked by a unit test).
        let bonds = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("bonds"),
            layout: Some(&layout),
            vertex: wgpu::VertexState {
                module: &bonds_sh,
                entry_point: Some("vs_main"),
                compilation_options: Default::default(),
                buffers: &[Some(wgpu::VertexBufferLayout {
                    array_stride: std::mem::size_of::<BondInstance>() as u64,
                    step_mode: wgpu::VertexStepMode::Instance,
                    attributes: &bond_attrs,
                })],
            },
            primitive: wgpu::PrimitiveState { topology: wgpu::PrimitiveTopology::TriangleStrip, ..Default::default() },
            depth_stencil: Some(depth(true)),
            multisample: ms,
            fragment: Some(wgpu::FragmentState {
                module: &bonds_sh,
                entry_point: Some("fs_main"),
                compilation_options: Default::default(),
                targets: &opaque,
            }),
            multiview_mask: None,
            cache: None,
        });

        let flat_sh = shader(device, "flat", include_str!("../../../shaders/flat.wgsl"));
        let flat_attrs = wgpu::vertex_attr_array![0 => Float32x3, 1 => Float32x3, 2 => Float32x4];
        let flat = |label, topology, blend: bool| {
            device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
                label: Some(label),
                layout: Some(&layout),
                vertex: wgpu::VertexState {
                    module: &flat_sh,
                    entry_point: Some("vs_main"),
                    compilation_options: Default::default(),
                    buffers: &[Some(wgpu::VertexBufferLayout {
                        array_stride: std::mem::size_of::<FlatVertex>() as u64,
                        step_mode: wgpu::VertexStepMode::Vertex,
                        attributes: &flat_attrs,
                    })],
                },
                primitive: wgpu::PrimitiveState { topology, ..Default::default() },
                depth_stencil: Some(depth(!blend)),
                multisample: ms,
                fragment: Some(wgpu::FragmentState {
                    module: &flat_sh,
                    entry_point: Some("fs_main"),
                    compilation_options: Default::default(),
                    targets: if blend { &blended } else { &opaque },
                }),
                multiview_mask: None,
                cache: None,
            })
        };
        let lines = flat("cell edges", wgpu::PrimitiveTopology::LineList, false);
        let triangles = flat("polyhedra", wgpu::PrimitiveTopology::TriangleList, true);

        let blit_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("viewer blit"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Float { filterable: true },
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: false,
                    },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                    count: None,
                },
            ],
        });
        let blit = blit_format.map(|fmt| {
            let sh = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("blit"),
                source: wgpu::ShaderSource::Wgsl(include_str!("../../../shaders/blit.wgsl").into()),
            });
            let bl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("blit"),
                bind_group_layouts: &[Some(&blit_layout)],
                immediate_size: 0,
            });
            device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
                label: Some("blit"),
                layout: Some(&bl),
                vertex: wgpu::VertexState {
                    module: &sh,
                    entry_point: Some("vs_main"),
                    compilation_options: Default::default(),
                    buffers: &[],
                },
                primitive: Default::default(),
                depth_stencil: None,
                multisample: Default::default(),
                fragment: Some(wgpu::FragmentState {
                    module: &sh,
                    entry_point: Some("fs_main"),
                    compilation_options: Default::default(),
                    targets: &[Some(wgpu::ColorTargetState {
                        format: fmt,
                        blend: None,
                        write_mask: wgpu::ColorWrites::ALL,
                    })],
                }),
                multiview_mask: None,
                cache: None,
            })
        });
        let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("viewer blit"),
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            ..Default::default()
        });

        ViewerRenderer {
            bind_layout,
            atoms,
            bonds,
            lines,
            triangles,
            blit,
            blit_layout,
            sampler,
            views: HashMap::new(),
        }
    }

    fn view(&mut self, device: &wgpu::Device, id: u64) -> &mut View {
        let (layout, views) = (&self.bind_layout, &mut self.views);
        views.entry(id).or_insert_with(|| {
            let uniform = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("viewer globals"),
                size: std::mem::size_of::<Globals>() as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("viewer globals"),
                layout,
                entries: &[wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() }],
            });
            View { target: None, scene: None, scene_version: u64::MAX, uniform, bind, rendered: None }
        })
    }

    /// Upload draw data for view `id` if `version` changed.
    pub fn set_scene(&mut self, device: &wgpu::Device, id: u64, version: u64, data: &DrawData) {
        let v = self.view(device, id);
        if v.scene_version == version && v.scene.is_some() {
            return;
        }
        let buf = |label: &str, bytes: &[u8]| {
            (!bytes.is_empty()).then(|| {
                device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(label),
                    contents: bytes,
                    usage: wgpu::BufferUsages::VERTEX,
                })
            })
        };
        v.scene = Some(GpuScene {
            atoms: buf("atoms", bytemuck::cast_slice(&data.atoms)),
            n_atoms: data.atoms.len() as u32,
            bonds: buf("bonds", bytemuck::cast_slice(&data.bonds)),
            n_bonds: data.bonds.len() as u32,
            lines: buf("cell", bytemuck::cast_slice(&data.lines)),
            n_lines: data.lines.len() as u32,
            triangles: buf("polyhedra", bytemuck::cast_slice(&data.triangles)),
            n_triangles: data.triangles.len() as u32,
        });
        v.scene_version = version;
    }

    /// Render view `id` with `camera` into its offscreen target of `size` pixels.
    #[allow(clippy::too_many_arguments)]
    pub fn render(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        id: u64,
        camera: &Camera,
        size: [u32; 2],
        background: [f64; 4],
    ) {
        let size = [size[0].clamp(1, 8192), size[1].clamp(1, 8192)];
        let blit = self.blit.is_some();
        let (blit_layout, sampler) = (&self.blit_layout, &self.sampler);
        let v = self.views.get_mut(&id);
        let Some(v) = v else { return };
        if v.target.as_ref().is_none_or(|t| t.size != size) {
            v.target = Some(make_target(device, size, blit.then_some((blit_layout, sampler))));
            v.rendered = None;
        }
        let view = camera.view();
        let proj = camera.projection(size[0] as f32 / size[1] as f32);
        let light = glam::Vec3::new(0.35, 0.55, 0.75).normalize();
        let g = Globals {
            view: view.to_cols_array_2d(),
            proj: proj.to_cols_array_2d(),
            light_dir: [light.x, light.y, light.z, 0.0],
            params: [camera.orthographic as u32 as f32, size[0] as f32, size[1] as f32, 0.0],
        };
        let key = (bytemuck::bytes_of(&g).to_vec(), background.map(f64::to_bits), v.scene_version);
        if v.rendered.as_ref() == Some(&key) {
            return;
        }
        queue.write_buffer(&v.uniform, 0, bytemuck::bytes_of(&g));
        v.rendered = Some(key);
        let Some(t) = &v.target else { return };
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("viewer"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: &t.msaa,
                depth_slice: None,
                resolve_target: Some(&t.resolve_view),
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Clear(wgpu::Color {
                        r: background[0],
                        g: background[1],
                        b: background[2],
                        a: background[3],
                    }),
                    store: wgpu::StoreOp::Discard,
                },
            })],
            depth_stencil_attachment: Some(wgpu::RenderPassDepthStencilAttachment {
                view: &t.depth,
                depth_ops: Some(wgpu::Operations { load: wgpu::LoadOp::Clear(1.0), store: wgpu::StoreOp::Discard }),
                stencil_ops: None,
            }),
            timestamp_writes: None,
            occlusion_query_set: None,
            multiview_mask: None,
        });
        pass.set_bind_group(0, &v.bind, &[]);
        if let Some(s) = &v.scene {
            if let Some(b) = &s.lines {
                pass.set_pipeline(&self.lines);
                pass.set_vertex_buffer(0, b.slice(..));
                pass.draw(0..s.n_lines, 0..1);
            }
            if let Some(b) = &s.bonds {
                pass.set_pipeline(&self.bonds);
                pass.set_vertex_buffer(0, b.slice(..));
                pass.draw(0..4, 0..s.n_bonds);
            }
            if let Some(b) = &s.atoms {
                pass.set_pipeline(&self.atoms);
                pass.set_vertex_buffer(0, b.slice(..));
                pass.draw(0..4, 0..s.n_atoms);
            }
            if let Some(b) = &s.triangles {
                pass.set_pipeline(&self.triangles);
                pass.set_vertex_buffer(0, b.slice(..));
                pass.draw(0..s.n_triangles, 0..1);
            }
        }
    }

    /// Draw view `id`'s last image into the current (egui) pass, filling its viewport.
    pub fn blit(&self, pass: &mut wgpu::RenderPass<'static>, id: u64) {
        let (Some(p), Some(v)) = (&self.blit, self.views.get(&id)) else { return };
        let Some(bind) = v.target.as_ref().and_then(|t| t.blit_bind.as_ref()) else { return };
        pass.set_pipeline(p);
        pass.set_bind_group(0, bind, &[]);
        pass.draw(0..3, 0..1);
    }

    /// Render `data` seen by `camera` at `size` pixels and read it back as tightly packed RGBA8
    /// (sRGB) rows, top row first. Blocks until the GPU is done.
    pub fn render_to_rgba(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        data: &DrawData,
        camera: &Camera,
        size: [u32; 2],
        background: [f64; 4],
    ) -> Result<Vec<u8>, String> {
        // A view id of its own, so exports never disturb what is on screen.
        const EXPORT_VIEW: u64 = u64::MAX - 1;
        self.views.remove(&EXPORT_VIEW);
        self.set_scene(device, EXPORT_VIEW, 0, data);
        let mut encoder =
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("viewer export") });
        self.render(device, queue, &mut encoder, EXPORT_VIEW, camera, size, background);
        let t = self.views.get(&EXPORT_VIEW).and_then(|v| v.target.as_ref()).ok_or("no export target")?;
        let size = t.size;
        let row = size[0] * 4;
        let padded = row.div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT) * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT;
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("viewer readback"),
            size: (padded * size[1]) as u64,
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        });
        encoder.copy_texture_to_buffer(
            wgpu::TexelCopyTextureInfo {
                texture: &t.resolve,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            wgpu::TexelCopyBufferInfo {
                buffer: &buffer,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(padded),
                    rows_per_image: Some(size[1]),
                },
            },
            wgpu::Extent3d { width: size[0], height: size[1], depth_or_array_layers: 1 },
        );
        let index = queue.submit([encoder.finish()]);
        let slice = buffer.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(index),
                timeout: Some(std::time::Duration::from_secs(60)),
            })
            .map_err(|e| format!("GPU did not finish: {e}"))?;
        rx.recv().map_err(|e| e.to_string())?.map_err(|e| format!("cannot read the image back: {e}"))?;
        let mapped = slice.get_mapped_range().map_err(|e| format!("cannot map the image: {e:?}"))?;
        let mut out = Vec::with_capacity((row * size[1]) as usize);
        for y in 0..size[1] {
            let start = (y * padded) as usize;
            out.extend_from_slice(&mapped[start..start + row as usize]);
        }
        drop(mapped);
        buffer.unmap();
        self.views.remove(&EXPORT_VIEW);
        Ok(out)
    }
}

fn make_target(
    device: &wgpu::Device,
    size: [u32; 2],
    blit: Option<(&wgpu::BindGroupLayout, &wgpu::Sampler)>,
) -> Target {
    let extent = wgpu::Extent3d { width: size[0], height: size[1], depth_or_array_layers: 1 };
    let tex = |label, format, samples, usage| {
        device.create_texture(&wgpu::TextureDescriptor {
            label: Some(label),
            size: extent,
            mip_level_count: 1,
            sample_count: samples,
            dimension: wgpu::TextureDimension::D2,
            format,
            usage,
            view_formats: &[],
        })
    };
    let msaa = tex("viewer msaa", OFFSCREEN_FORMAT, MSAA, wgpu::TextureUsages::RENDER_ATTACHMENT)
        .create_view(&Default::default());
    let resolve = tex(
        "viewer image",
        OFFSCREEN_FORMAT,
        1,
        wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_SRC,
    );
    let resolve_view = resolve.create_view(&Default::default());
    let depth = tex("viewer depth", DEPTH_FORMAT, MSAA, wgpu::TextureUsages::RENDER_ATTACHMENT)
        .create_view(&Default::default());
    let blit_bind = blit.map(|(layout, sampler)| {
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("viewer blit"),
            layout,
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: wgpu::BindingResource::TextureView(&resolve_view) },
                wgpu::BindGroupEntry { binding: 1, resource: wgpu::BindingResource::Sampler(sampler) },
            ],
        })
    });
    Target { size, msaa, resolve, resolve_view, depth, blit_bind }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_layouts_match_the_shader_attributes() {
        // Packed attribute offsets (wgpu::vertex_attr_array) must equal the Rust field offsets.
        assert_eq!(std::mem::offset_of!(BondInstance, end), 16);
        assert_eq!(std::mem::offset_of!(BondInstance, color), 28);
        assert_eq!(std::mem::offset_of!(AtomInstance, color), 16);
        assert_eq!(std::mem::offset_of!(AtomInstance, flags), 32);
        assert_eq!(std::mem::offset_of!(FlatVertex, color), 24);
    }

    #[test]
    fn hull_of_an_octahedron_has_eight_outward_faces() {
        let pts =
            [[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, -1.0]];
        let f = convex_hull_triangles(&pts);
        assert_eq!(f.len(), 8);
        for t in f {
            let [a, b, c] = t.map(|i| Vec3::from(pts[i]));
            assert!((b - a).cross(c - a).dot(a) > 0.0);
        }
        // A cube: 6 square faces, two triangles each.
        let cube: Vec<[f32; 3]> =
            (0..8).map(|i| [(i & 1) as f32, ((i >> 1) & 1) as f32, ((i >> 2) & 1) as f32]).collect();
        assert_eq!(convex_hull_triangles(&cube).len(), 12);
    }
}
