// Shared by every viewer shader (prepended by the renderer).
struct Globals {
    view: mat4x4<f32>,
    proj: mat4x4<f32>,
    // Direction towards the light, view space.
    light_dir: vec4<f32>,
    // x: 1 for orthographic, 0 for perspective; y, z: viewport size in pixels.
    params: vec4<f32>,
};

@group(0) @binding(0) var<uniform> g: Globals;

// Linear to sRGB: the offscreen target is Rgba8Unorm and egui's target is not sRGB, so encode here.
fn to_srgb(c: vec3<f32>) -> vec3<f32> {
    let lo = c * 12.92;
    let hi = 1.055 * pow(max(c, vec3<f32>(0.0)), vec3<f32>(1.0 / 2.4)) - 0.055;
    return select(hi, lo, c <= vec3<f32>(0.0031308));
}

// Lambert + Blinn-Phong with a little ambient; n and v in view space, v towards the viewer.
fn shade(base: vec3<f32>, n: vec3<f32>, v: vec3<f32>) -> vec3<f32> {
    let l = normalize(g.light_dir.xyz);
    let diffuse = max(dot(n, l), 0.0);
    let h = normalize(l + v);
    let spec = pow(max(dot(n, h), 0.0), 48.0);
    let fill = max(dot(n, normalize(vec3<f32>(-0.4, -0.2, 0.8))), 0.0);
    return base * (0.22 + 0.68 * diffuse + 0.18 * fill) + vec3<f32>(0.28 * spec);
}

// Size of one pixel (view-space units, Å) at view-space depth `z`.
fn pixel_size(z: f32) -> f32 {
    let depth = select(abs(z), 1.0, g.params.x > 0.5);
    return 2.0 * depth / (g.proj[1][1] * max(g.params.z, 1.0));
}

// Anti-aliased impostor edges: `coverage` in [0, 1] of the pixel becomes a mask over the 4 MSAA
// samples (the colour stays opaque, so exported PNGs keep an opaque background).
fn coverage_mask(coverage: f32) -> u32 {
    let n = u32(clamp(round(coverage * 4.0), 0.0, 4.0));
    return (1u << n) - 1u;
}

// The viewing ray through the fragment at view-space point `p` (eye at the origin looking down −z;
// orthographic rays start on the z = 0 plane and run parallel).
struct Ray {
    origin: vec3<f32>,
    dir: vec3<f32>,
};

fn view_ray(p: vec3<f32>) -> Ray {
    if (g.params.x > 0.5) {
        return Ray(vec3<f32>(p.xy, 0.0), vec3<f32>(0.0, 0.0, -1.0));
    }
    return Ray(vec3<f32>(0.0), normalize(p));
}

// What the ray-cast impostors (atoms, bonds) write: colour, the true depth of the hit, and the MSAA
// samples covered.
struct ImpostorOut {
    @location(0) color: vec4<f32>,
    @builtin(frag_depth) depth: f32,
    @builtin(sample_mask) mask: u32,
};

fn impostor_out(rgb: vec3<f32>, hit: vec3<f32>, mask: u32) -> ImpostorOut {
    let clip = g.proj * vec4<f32>(hit, 1.0);
    return ImpostorOut(vec4<f32>(to_srgb(rgb), 1.0), clip.z / clip.w, mask);
}
