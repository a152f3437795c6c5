// Atoms as ray-cast sphere impostors: a camera-facing quad per instance, the exact sphere
// intersection per fragment, and the true depth written so spheres and bonds interpenetrate correctly.
// Silhouettes are anti-aliased through the MSAA sample mask (coverage from the ray's distance to the
// centre), since a discarded fragment gets no MSAA smoothing.

struct AtomIn {
    @location(0) center: vec3<f32>,
    @location(1) radius: f32,
    @location(2) color: vec4<f32>,
    // bit 0: hovered, bit 1: selected.
    @location(3) flags: u32,
};

struct VsOut {
    @builtin(position) pos: vec4<f32>,
    @location(0) view_pos: vec3<f32>,
    @location(1) @interpolate(flat) center: vec3<f32>,
    @location(2) @interpolate(flat) radius: f32,
    @location(3) @interpolate(flat) color: vec4<f32>,
    @location(4) @interpolate(flat) flags: u32,
};

@vertex
fn vs_main(@builtin(vertex_index) vi: u32, a: AtomIn) -> VsOut {
    var corners = array<vec2<f32>, 4>(vec2<f32>(-1.0, -1.0), vec2<f32>(1.0, -1.0), vec2<f32>(-1.0, 1.0), vec2<f32>(1.0, 1.0));
    let c = corners[vi];
    let cv = (g.view * vec4<f32>(a.center, 1.0)).xyz;
    // The quad faces the eye and sits one radius in front of the centre: there a half-size of one
    // radius covers the silhouette cone (radius·√((D−R)/(D+R)) < R); ¾ pixel more for the anti-aliased edge.
    var to_eye = normalize(-cv);
    if (g.params.x > 0.5) {
        to_eye = vec3<f32>(0.0, 0.0, 1.0);
    }
    let hint = select(vec3<f32>(0.0, 1.0, 0.0), vec3<f32>(1.0, 0.0, 0.0), abs(to_eye.y) > 0.99);
    let right = normalize(cross(hint, to_eye));
    let up = cross(to_eye, right);
    let front = cv + to_eye * a.radius;
    let half = a.radius * 1.05 + 0.75 * pixel_size(front.z);
    let p = front + (right * c.x + up * c.y) * half;
    var out: VsOut;
    out.pos = g.proj * vec4<f32>(p, 1.0);
    out.view_pos = p;
    out.center = cv;
    out.radius = a.radius;
    out.color = a.color;
    out.flags = a.flags;
    return out;
}

@fragment
fn fs_main(in: VsOut) -> ImpostorOut {
    let ray = view_ray(in.view_pos);
    let ro = ray.origin;
    let rd = ray.dir;
    let oc = ro - in.center;
    let b = dot(oc, rd);
    // Distance from the centre to the ray, in pixels at the depth of the closest approach (a
    // screen derivative would break down where the distance has its kink, on the centre line).
    let miss2 = max(dot(oc, oc) - b * b, 0.0);
    let miss = sqrt(miss2);
    let px = pixel_size((ro - b * rd).z);
    let coverage = clamp((in.radius - miss) / px + 0.5, 0.0, 1.0);
    let mask = coverage_mask(coverage);
    if (mask == 0u) {
        discard;
    }
    // Just outside the silhouette the ray's closest approach stands in for the hit (the rim).
    let t = -b - sqrt(max(in.radius * in.radius - miss2, 0.0));
    let hit = ro + t * rd;
    let n = normalize(hit - in.center);
    var base = in.color.rgb;
    if ((in.flags & 1u) != 0u) {
        base = min(base * 1.35 + vec3<f32>(0.08), vec3<f32>(1.0));
    }
    var rgb = shade(base, n, -rd);
    if ((in.flags & 2u) != 0u && dot(n, -rd) < 0.45) {
        rgb = vec3<f32>(1.0, 0.78, 0.1);
    }
    return impostor_out(rgb, hit, mask);
}
