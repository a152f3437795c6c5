//! The orbit camera: a target point, a distance, a rotation, perspective or orthographic projection.
//! Right-handed view space, wgpu clip space (depth 0..1, y up).

use glam::{Mat4, Quat, Vec3, Vec4};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Camera {
    /// Point orbited around (Å).
    pub target: [f32; 3],
    /// Distance from the target (Å).
    pub distance: f32,
    /// Rotation taking view space to world space (x right, y up, z towards the viewer).
    pub rotation: [f32; 4],
    pub orthographic: bool,
    /// Vertical field of view (radians) in perspective.
    pub fov_y: f32,
}

impl Default for Camera {
    fn default() -> Self {
        Camera {
            target: [0.0; 3],
            distance: 20.0,
            rotation: Quat::IDENTITY.to_array(),
            orthographic: false,
            fov_y: 30f32.to_radians(),
        }
    }
}

impl Camera {
    /// Frame a sphere (centre, radius in Å) from a slightly tilted default direction.
    pub fn framing(center: [f32; 3], radius: f32, orthographic: bool) -> Camera {
        let rot = Quat::from_rotation_x(-0.35) * Quat::from_rotation_y(0.55);
        let mut c = Camera { target: center, rotation: rot.inverse().to_array(), orthographic, ..Default::default() };
        c.fit(radius);
        c
    }

    /// Set the distance so a sphere of `radius` fills the view.
    pub fn fit(&mut self, radius: f32) {
        let r = radius.max(0.5);
        self.distance = r / (0.5 * self.fov_y).sin() * 1.05;
    }

    fn rot(&self) -> Quat {
        Quat::from_array(self.rotation).normalize()
    }

    pub fn eye(&self) -> Vec3 {
        Vec3::from(self.target) + self.rot() * Vec3::Z * self.distance
    }

    /// World → view.
    pub fn view(&self) -> Mat4 {
        let r = self.rot();
        glam::camera::rh::view::look_at_mat4(self.eye(), Vec3::from(self.target), r * Vec3::Y)
    }

    /// View → clip for an aspect ratio (width / height).
    pub fn projection(&self, aspect: f32) -> Mat4 {
        let near = (self.distance * 0.01).max(0.01);
        let far = self.distance * 4.0 + 100.0;
        if self.orthographic {
            let h = self.distance * (0.5 * self.fov_y).tan();
            glam::camera::rh::proj::directx::orthographic(-h * aspect, h * aspect, -h, h, near, far)
        } else {
            glam::camera::rh::proj::directx::perspective(self.fov_y, aspect.max(1e-3), near, far)
        }
    }

    pub fn view_projection(&self, aspect: f32) -> Mat4 {
        self.projection(aspect) * self.view()
    }

    /// Rotate by a mouse drag (pixels): horizontal turns around the view's up axis, vertical around its right axis.
    pub fn orbit(&mut self, dx: f32, dy: f32) {
        let r = self.rot();
        let q = Quat::from_axis_angle(r * Vec3::Y, -dx * 0.008) * Quat::from_axis_angle(r * Vec3::X, -dy * 0.008);
        self.rotation = (q * r).normalize().to_array();
    }

    /// Move the target in the view plane by a drag of (dx, dy) pixels on a viewport `height_px` tall.
    pub fn pan(&mut self, dx: f32, dy: f32, height_px: f32) {
        let r = self.rot();
        let scale = 2.0 * self.distance * (0.5 * self.fov_y).tan() / height_px.max(1.0);
        let t = Vec3::from(self.target) + r * Vec3::new(-dx * scale, dy * scale, 0.0);
        self.target = t.to_array();
    }

    /// Zoom by a factor (> 1 moves closer).
    pub fn zoom(&mut self, factor: f32) {
        self.distance = (self.distance / factor.max(1e-3)).clamp(0.5, 1e5);
    }

    /// Look along `dir` (world direction from the viewer into the screen), keeping `up` as close to
    /// vertical as possible.
    pub fn look_along(&mut self, dir: [f32; 3], up: [f32; 3]) {
        let d = Vec3::from(dir).normalize_or(Vec3::NEG_Z);
        let mut u = Vec3::from(up);
        if u.cross(d).length_squared() < 1e-6 {
            u = if d.x.abs() < 0.9 { Vec3::X } else { Vec3::Y };
        }
        let z = -d;
        let x = u.cross(z).normalize();
        let y = z.cross(x);
        self.rotation = Quat::from_mat3(&glam::Mat3::from_cols(x, y, z)).normalize().to_array();
    }

    /// World position → (pixel x, pixel y, depth 0..1) in a viewport of `size` pixels, or `None` if behind.
    pub fn project(&self, p: [f32; 3], size: [f32; 2]) -> Option<[f32; 3]> {
        let clip = self.view_projection(size[0] / size[1].max(1.0)) * Vec4::new(p[0], p[1], p[2], 1.0);
        if clip.w <= 1e-6 {
            return None;
        }
        let ndc = clip.truncate() / clip.w;
        Some([(ndc.x + 1.0) * 0.5 * size[0], (1.0 - ndc.y) * 0.5 * size[1], ndc.z])
    }

    /// The world-space ray (origin, unit direction) through pixel `px` of a viewport of `size` pixels.
    pub fn ray(&self, px: [f32; 2], size: [f32; 2]) -> (Vec3, Vec3) {
        let inv = self.view_projection(size[0] / size[1].max(1.0)).inverse();
        let ndc = [px[0] / size[0] * 2.0 - 1.0, 1.0 - px[1] / size[1] * 2.0];
        let near = inv * Vec4::new(ndc[0], ndc[1], 0.0, 1.0);
        let far = inv * Vec4::new(ndc[0], ndc[1], 1.0, 1.0);
        let (a, b) = (near.truncate() / near.w, far.truncate() / far.w);
        (a, (b - a).normalize())
    }
}

/// Index of the first sphere hit by a ray, with the hit distance.
pub fn pick_sphere(origin: Vec3, dir: Vec3, centers: impl Iterator<Item = ([f32; 3], f32)>) -> Option<(usize, f32)> {
    let mut best: Option<(usize, f32)> = None;
    for (i, (c, r)) in centers.enumerate() {
        let oc = origin - Vec3::from(c);
        let b = oc.dot(dir);
        let disc = b * b - (oc.length_squared() - r * r);
        if disc < 0.0 {
            continue;
        }
        let t = -b - disc.sqrt();
        if t > 0.0 && best.is_none_or(|(_, bt)| t < bt) {
            best = Some((i, t));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_projects_to_the_centre_and_rays_hit_it() {
        for ortho in [false, true] {
            let c = Camera::framing([1.0, 2.0, 3.0], 5.0, ortho);
            let p = c.project([1.0, 2.0, 3.0], [800.0, 600.0]).unwrap();
            assert!((p[0] - 400.0).abs() < 1e-2 && (p[1] - 300.0).abs() < 1e-2, "{p:?}");
            let (o, d) = c.ray([400.0, 300.0], [800.0, 600.0]);
            assert_eq!(pick_sphere(o, d, [([1.0, 2.0, 3.0], 0.5)].into_iter()).map(|h| h.0), Some(0));
            assert_eq!(pick_sphere(o, d, [([9.0, 2.0, 3.0], 0.5)].into_iter()), None);
        }
    }

    #[test]
    fn looking_along_a_puts_b_to_the_right() {
        let mut c = Camera::framing([0.0; 3], 5.0, true);
        c.look_along([1.0, 0.0, 0.0], [0.0, 0.0, 1.0]);
        // Looking down +x with z up: +y appears to the left (right-handed), +z up.
        let up = c.project([0.0, 0.0, 1.0], [100.0, 100.0]).unwrap();
        assert!(up[1] < 50.0);
        let y = c.project([0.0, 1.0, 0.0], [100.0, 100.0]).unwrap();
        assert!(y[0] < 50.0);
    }
}
