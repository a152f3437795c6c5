// Cell edges (lines, unlit) and coordination polyhedra (translucent triangles, lit by their normal).

struct VertexIn {
    @location(0) pos: vec3<f32>,
    @location(1) normal: vec3<f32>,
    @location(2) color: vec4<f32>,
};

struct VsOut {
    @builtin(position) pos: vec4<f32>,
    @location(0) normal: vec3<f32>,
    @location(1) color: vec4<f32>,
};

@vertex
fn vs_main(v: VertexIn) -> VsOut {
    var out: VsOut;
    out.pos = g.proj * g.view * vec4<f32>(v.pos, 1.0);
    out.normal = (g.view * vec4<f32>(v.normal, 0.0)).xyz;
    out.color = v.color;
    return out;
}

@fragment
fn fs_main(in: VsOut) -> @location(0) vec4<f32> {
    var rgb = in.color.rgb;
    if (dot(in.normal, in.normal) > 1e-8) {
        let n = normalize(in.normal);
        rgb = shade(rgb, select(-n, n, n.z > 0.0), vec3<f32>(0.0, 0.0, 1.0));
    }
    return vec4<f32>(to_srgb(rgb), in.color.a);
}
