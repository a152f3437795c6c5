// Bonds as instanced cylinder meshes (side walls only: the ends sit inside atoms).

struct VertexIn {
    // Unit cylinder: (cos θ, sin θ) on the wall, z in {0, 1} along the axis.
    @location(0) pos: vec3<f32>,
};

struct BondIn {
    @location(1) start: vec3<f32>,
    @location(2) radius: f32,
    @location(3) end: vec3<f32>,
    @location(4) color: vec4<f32>,
};

struct VsOut {
    @builtin(position) pos: vec4<f32>,
    @location(0) normal: vec3<f32>,
    @location(1) view_pos: vec3<f32>,
    @location(2) color: vec4<f32>,
};

@vertex
fn vs_main(v: VertexIn, b: BondIn) -> VsOut {
    let axis = b.end - b.start;
    let len = max(length(axis), 1e-6);
    let z = axis / len;
    let helper = select(vec3<f32>(1.0, 0.0, 0.0), vec3<f32>(0.0, 1.0, 0.0), abs(z.x) > 0.9);
    let x = normalize(cross(helper, z));
    let y = cross(z, x);
    let world = b.start + x * (v.pos.x * b.radius) + y * (v.pos.y * b.radius) + z * (v.pos.z * len);
    let nw = x * v.pos.x + y * v.pos.y;
    let vp = (g.view * vec4<f32>(world, 1.0)).xyz;
    var out: VsOut;
    out.pos = g.proj * vec4<f32>(vp, 1.0);
    out.normal = (g.view * vec4<f32>(nw, 0.0)).xyz;
    out.view_pos = vp;
    out.color = b.color;
    return out;
}

@fragment
fn fs_main(in: VsOut) -> @location(0) vec4<f32> {
    var v = normalize(-in.view_pos);
    if (g.params.x > 0.5) {
        v = vec3<f32>(0.0, 0.0, 1.0);
    }
    let rgb = shade(in.color.rgb, normalize(in.normal), v);
    return vec4<f32>(to_srgb(rgb), 1.0);
}
