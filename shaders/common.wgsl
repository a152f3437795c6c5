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
