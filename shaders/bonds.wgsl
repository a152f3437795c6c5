// Bonds as ray-cast cylinder impostors: one quad (4 vertices) per bond half, lying between the axis
// and the viewer and wide enough to cover the cylinder's silhouette; each fragment intersects its
// ray with the cylinder (side wall and flat end caps) and writes the true depth. Caps matter for
// bonds that leave the drawn atoms (to neighbours outside the shown cells); elsewhere they are hidden
// inside an atom or inside the other half of the bond. The long edges are anti-aliased through the
// MSAA sample mask, as for the atoms.
// A meshed cylinder cost 96 vertices per bond half, which dominated frames of 100k-atom scenes.

struct BondIn {
    @location(1) start: vec3<f32>,
    @location(2) radius: f32,
    @location(3) end: vec3<f32>,
    @location(4) color: vec4<f32>,
};

struct VsOut {
    @builtin(position) pos: vec4<f32>,
    @location(0) view_pos: vec3<f32>,
    @location(1) @interpolate(flat) start: vec3<f32>,
    @location(2) @interpolate(flat) axis: vec3<f32>,
    @location(3) @interpolate(flat) len_radius: vec2<f32>,
    @location(4) @interpolate(flat) color: vec4<f32>,
};

@vertex
fn vs_main(@builtin(vertex_index) vi: u32, b: BondIn) -> VsOut {
    let s = (g.view * vec4<f32>(b.start, 1.0)).xyz;
    let e = (g.view * vec4<f32>(b.end, 1.0)).xyz;
    let d = e - s;
    let len = max(length(d), 1e-6);
    let axis = d / len;
    // The quad faces the viewer: `u` is the axis as seen on screen, `w` across it. Looking down the
    // axis, the two ends project together and the quad becomes a square over the end cap.
    var view_dir = normalize(0.5 * (s + e));
    if (g.params.x > 0.5) {
        view_dir = vec3<f32>(0.0, 0.0, -1.0);
    }
    var u = axis - view_dir * dot(axis, view_dir);
    if (length(u) < 1e-4) {
        u = select(vec3<f32>(1.0, 0.0, 0.0), vec3<f32>(0.0, 1.0, 0.0), abs(view_dir.x) > 0.9);
        u = u - view_dir * dot(u, view_dir);
    }
    u = normalize(u);
    let w = cross(view_dir, u);
    // Corners 0, 1 at the start, 2, 3 at the end (triangle strip); sides -1, +1.
    let at_end = vi >= 2u;
    let side = select(-1.0, 1.0, (vi & 1u) == 1u);
    let p = select(s, e, at_end);
    let r = b.radius;
    // One radius in front of the axis, a half-width of r covers the silhouette of everything within
    // r of the axis (as for the atoms' quads); the margins cover perspective, the end caps and the
    // anti-aliased edge.
    let outward = select(-1.0, 1.0, at_end);
    let front = p - view_dir * r;
    let margin = r * 1.2 + 0.75 * pixel_size(front.z);
    let corner = front + u * (outward * margin) + w * (side * margin);
    var out: VsOut;
    out.pos = g.proj * vec4<f32>(corner, 1.0);
    out.view_pos = corner;
    out.start = s;
    out.axis = axis;
    out.len_radius = vec2<f32>(len, r);
    out.color = b.color;
    return out;
}

@fragment
fn fs_main(in: VsOut) -> ImpostorOut {
    let ray = view_ray(in.view_pos);
    let ro = ray.origin;
    let rd = ray.dir;
    let len = in.len_radius.x;
    let r = in.len_radius.y;
    // Ray against the infinite cylinder: work in the plane perpendicular to the axis.
    let oc = ro - in.start;
    let d_perp = rd - in.axis * dot(rd, in.axis);
    let o_perp = oc - in.axis * dot(oc, in.axis);
    let a = max(dot(d_perp, d_perp), 1e-12);
    let half_b = dot(d_perp, o_perp);
    // Distance from the axis to the ray, in pixels at the depth of the closest approach (as for
    // the atoms: one pixel across the axis on screen moves the ray one pixel size from it).
    let miss2 = max(dot(o_perp, o_perp) - half_b * half_b / a, 0.0);
    let miss = sqrt(miss2);
    let px = pixel_size((ro - (half_b / a) * rd).z);
    let coverage = clamp((r - miss) / px + 0.5, 0.0, 1.0);
    var mask = coverage_mask(coverage);
    if (mask == 0u) {
        discard;
    }
    // Just outside the silhouette the ray's closest approach stands in for the hit (the rim).
    let t = (-half_b - sqrt(max(half_b * half_b - a * (dot(o_perp, o_perp) - r * r), 0.0))) / a;
    var hit = ro + t * rd;
    let h = dot(hit - in.start, in.axis);
    var n: vec3<f32>;
    if (h >= 0.0 && h <= len) {
        n = normalize(hit - (in.start + in.axis * h));
    } else {
        // The ray enters the infinite cylinder beyond an end: it can only hit that end's cap.
        let cap_h = clamp(h, 0.0, len);
        let along = dot(rd, in.axis);
        if (abs(along) < 1e-6) {
            discard;
        }
        let tc = (cap_h - dot(oc, in.axis)) / along;
        hit = ro + tc * rd;
        let centre = in.start + in.axis * cap_h;
        // 1 % of slack in the radius: where wall and cap meet, rounding must not open a hole.
        if (dot(hit - centre, hit - centre) > r * r * 1.02) {
            discard;
        }
        n = in.axis * -sign(along);
        mask = 0xFu;
    }
    let rgb = shade(in.color.rgb, n, -rd);
    return impostor_out(rgb, hit, mask);
}
