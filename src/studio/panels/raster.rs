//! Scatter plots of many points drawn as one texture.
//!
//! egui_plot's `Points` tessellates every marker into its own anti-aliased mesh: a 20,000-point scatter
//! is ~400,000 vertices each frame, which dominates the frame time on a software renderer. A
//! [`RasterScatter`] instead splats its points into an image of the plot's frame (one anti-aliased disc
//! per point, in drawing order) and shows that image as textured quads, one per 32-pixel tile that
//! holds any point. The image is redrawn only when the data, the plot's bounds, its frame or the
//! display scale change, so a still plot costs one small mesh per frame, and panning or zooming costs
//! one splat of every point (≈ 1 ms per 20,000 points) plus a texture upload. The item has no geometry for egui_plot's hover: panels find the point under
//! the pointer themselves (they already do, to open it on click).

use std::sync::{Arc, Mutex};

use eframe::egui::{self, Color32, ColorImage, Rect, Shape, TextureHandle, TextureOptions, pos2};
use egui_plot::{PlotBounds, PlotGeometry, PlotItem, PlotItemBase, PlotPoint, PlotTransform};

/// What an image was drawn for: the data's identity, the plot bounds, the frame (whole pixels) and the scale.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RasterKey {
    data: u64,
    bounds: [f64; 4],
    frame: [f32; 4],
    pixels_per_point: f32,
}

/// The texture a [`RasterScatter`] drew last, kept by its panel between frames, and how many times
/// it has been drawn.
#[derive(Default, Clone)]
pub struct RasterCache(Arc<Mutex<Option<Drawn>>>, Arc<std::sync::atomic::AtomicUsize>);

/// An image drawn for a key, and which of its [`TILE`]-pixel tiles hold any point (only those are
/// drawn: a software renderer pays for every textured pixel, transparent or not).
struct Drawn {
    key: RasterKey,
    texture: TextureHandle,
    /// (x, y, w, h) in pixels of every tile with a point.
    tiles: Vec<[usize; 4]>,
    size: [usize; 2],
}

/// Side of the tiles an image is cut into (pixels).
pub const TILE: usize = 32;

/// The tiles of `img` with any non-transparent pixel, as (x, y, w, h) in pixels.
pub fn occupied_tiles(img: &ColorImage) -> Vec<[usize; 4]> {
    let [w, h] = img.size;
    let mut out = Vec::new();
    for ty in (0..h).step_by(TILE) {
        for tx in (0..w).step_by(TILE) {
            let (tw, th) = (TILE.min(w - tx), TILE.min(h - ty));
            if (ty..ty + th).any(|y| img.pixels[y * w + tx..y * w + tx + tw].iter().any(|p| p.a() > 0)) {
                out.push([tx, ty, tw, th]);
            }
        }
    }
    out
}

impl RasterCache {
    /// How many images have been splatted so far (a still plot draws none).
    pub fn redraws(&self) -> usize {
        self.1.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Points (plot coordinates) with their colours and `bounds`, drawn as discs of `radius` (points) in one
/// texture. `data_key` must change whenever the points or their colours do.
pub struct RasterScatter {
    base: PlotItemBase,
    points: Arc<Vec<([f64; 2], Color32)>>,
    radius: f32,
    data_key: u64,
    cache: RasterCache,
    bounds: PlotBounds,
}

impl RasterScatter {
    pub fn new(
        name: &str,
        points: Arc<Vec<([f64; 2], Color32)>>,
        bounds: PlotBounds,
        radius: f32,
        data_key: u64,
        cache: &RasterCache,
    ) -> RasterScatter {
        RasterScatter {
            base: PlotItemBase::new(name.to_string()),
            points,
            radius,
            data_key,
            cache: cache.clone(),
            bounds,
        }
    }
}

/// Splat `points` (already in pixels of a `size` image) as anti-aliased discs of `radius_px`, later
/// points over earlier ones (premultiplied "over").
pub fn splat(size: [usize; 2], points: impl Iterator<Item = (egui::Pos2, Color32)>, radius_px: f32) -> ColorImage {
    let mut img = ColorImage::filled(size, Color32::TRANSPARENT);
    let [w, h] = size;
    let reach = radius_px + 0.5;
    for (p, c) in points {
        if !(p.x > -reach && p.y > -reach && p.x < w as f32 + reach && p.y < h as f32 + reach) {
            continue;
        }
        let (x0, x1) = ((p.x - reach).floor().max(0.0) as usize, ((p.x + reach).ceil().max(0.0) as usize).min(w));
        let (y0, y1) = ((p.y - reach).floor().max(0.0) as usize, ((p.y + reach).ceil().max(0.0) as usize).min(h));
        for y in y0..y1 {
            for x in x0..x1 {
                let d = ((x as f32 + 0.5 - p.x).powi(2) + (y as f32 + 0.5 - p.y).powi(2)).sqrt();
                let cover = (reach - d).clamp(0.0, 1.0);
                if cover <= 0.0 {
                    continue;
                }
                let src = c.gamma_multiply(cover);
                let dst = &mut img.pixels[y * w + x];
                let keep = 1.0 - src.a() as f32 / 255.0;
                let mix = |s: u8, d: u8| (s as f32 + d as f32 * keep).round().min(255.0) as u8;
                *dst = Color32::from_rgba_premultiplied(
                    mix(src.r(), dst.r()),
                    mix(src.g(), dst.g()),
                    mix(src.b(), dst.b()),
                    mix(src.a(), dst.a()),
                );
            }
        }
    }
    img
}

impl PlotItem for RasterScatter {
    fn shapes(&self, ui: &egui::Ui, transform: &PlotTransform, shapes: &mut Vec<Shape>) {
        let frame = *transform.frame();
        let ppp = ui.ctx().pixels_per_point();
        let (bmin, bmax) = (transform.bounds().min(), transform.bounds().max());
        let key = RasterKey {
            data: self.data_key,
            bounds: [bmin[0], bmin[1], bmax[0], bmax[1]],
            frame: [frame.min.x, frame.min.y, frame.max.x, frame.max.y].map(|v| (v * ppp).round()),
            pixels_per_point: ppp,
        };
        let size = [(frame.width() * ppp).round().max(0.0) as usize, (frame.height() * ppp).round().max(0.0) as usize];
        if size[0] == 0 || size[1] == 0 {
            return;
        }
        let mut cache = self.cache.0.lock().unwrap_or_else(|e| e.into_inner());
        if cache.as_ref().is_none_or(|d| d.key != key) {
            let to_px = |p: &[f64; 2]| {
                let s = transform.position_from_point(&PlotPoint::new(p[0], p[1]));
                pos2((s.x - frame.min.x) * ppp, (s.y - frame.min.y) * ppp)
            };
            self.cache.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let img = splat(size, self.points.iter().map(|(p, c)| (to_px(p), *c)), self.radius * ppp);
            let tiles = occupied_tiles(&img);
            match cache.as_mut() {
                Some(d) => {
                    d.texture.set(img, TextureOptions::NEAREST);
                    (d.key, d.tiles, d.size) = (key, tiles, size);
                }
                None => {
                    *cache = Some(Drawn {
                        key,
                        texture: ui.ctx().load_texture(
                            format!("raster scatter {}", self.name()),
                            img,
                            TextureOptions::NEAREST,
                        ),
                        tiles,
                        size,
                    })
                }
            }
        }
        if let Some(d) = cache.as_ref() {
            let mut mesh = egui::Mesh::with_texture(d.texture.id());
            let (iw, ih) = (d.size[0] as f32, d.size[1] as f32);
            for &[x, y, w, h] in &d.tiles {
                let (x, y, w, h) = (x as f32, y as f32, w as f32, h as f32);
                let screen = Rect::from_min_size(frame.min + egui::vec2(x, y) / ppp, egui::vec2(w, h) / ppp);
                let uv = Rect::from_min_max(pos2(x / iw, y / ih), pos2((x + w) / iw, (y + h) / ih));
                mesh.add_rect_with_uv(screen, uv, Color32::WHITE);
            }
            shapes.push(Shape::mesh(mesh));
        }
    }

    fn initialize(&mut self, _x_range: std::ops::RangeInclusive<f64>) {}

    fn color(&self) -> Color32 {
        self.points.first().map(|p| p.1).unwrap_or(Color32::GRAY)
    }

    fn geometry(&self) -> PlotGeometry<'_> {
        PlotGeometry::None
    }

    fn bounds(&self) -> PlotBounds {
        self.bounds
    }

    fn base(&self) -> &PlotItemBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut PlotItemBase {
        &mut self.base
    }
}

/// A panel's scatter kept between frames: the points and their colours are rebuilt only when the
/// panel's key (what is shown: rows, axes, colouring) changes.
pub struct ScatterCache {
    key: Option<u64>,
    /// Dataset row and plot position of every point, for hover and click.
    pub rows: Arc<Vec<(usize, [f64; 2])>>,
    /// What is drawn.
    pub points: Arc<Vec<([f64; 2], Color32)>>,
    /// The colour scale's ends (2nd and 98th percentile of the values).
    pub range: (f64, f64),
    /// The points' extent (for the plot's automatic bounds).
    bounds: PlotBounds,
    pub raster: RasterCache,
}

impl Default for ScatterCache {
    fn default() -> Self {
        ScatterCache {
            key: None,
            rows: Arc::default(),
            points: Arc::default(),
            range: (0.0, 0.0),
            bounds: PlotBounds::NOTHING,
            raster: RasterCache::default(),
        }
    }
}

/// The extent of the finite positions among `rows`.
fn bounds_of(rows: &[(usize, [f64; 2])]) -> PlotBounds {
    let mut bounds = PlotBounds::NOTHING;
    for (_, p) in rows.iter().filter(|(_, p)| p[0].is_finite() && p[1].is_finite()) {
        bounds.extend_with(&PlotPoint::new(p[0], p[1]));
    }
    bounds
}

/// A stable hash of anything printable, for [`ScatterCache`] keys.
pub fn key_of(what: impl std::fmt::Debug) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!("{what:?}").hash(&mut h);
    h.finish()
}

impl ScatterCache {
    /// Rebuild from `(row, position, colour value)` when `key` differs from the last one: viridis over
    /// the values' 2nd to 98th percentile (so a few outliers do not wash out the scale).
    pub fn update_coloured(&mut self, key: u64, build: impl FnOnce() -> Vec<(usize, [f64; 2], f64)>) {
        if self.key == Some(key) {
            return;
        }
        let pts = build();
        let mut cs: Vec<f64> = pts.iter().map(|p| p.2).collect();
        cs.sort_by(f64::total_cmp);
        let pct = |q: f64| cs.get(((cs.len().max(1) - 1) as f64 * q).round() as usize).copied().unwrap_or(0.0);
        let (cmin, cmax) = (pct(0.02), pct(0.98));
        let span = (cmax - cmin).max(1e-12);
        self.points = Arc::new(pts.iter().map(|p| (p.1, super::plots::viridis((p.2 - cmin) / span))).collect());
        self.rows = Arc::new(pts.into_iter().map(|p| (p.0, p.1)).collect());
        self.bounds = bounds_of(&self.rows);
        self.range = (cmin, cmax);
        self.key = Some(key);
    }

    /// Rebuild from `(row, position)` in one colour when `key` differs from the last one.
    pub fn update_plain(&mut self, key: u64, colour: Color32, build: impl FnOnce() -> Vec<(usize, [f64; 2])>) {
        if self.key == Some(key) {
            return;
        }
        let pts = build();
        self.points = Arc::new(pts.iter().map(|p| (p.1, colour)).collect());
        self.bounds = bounds_of(&pts);
        self.rows = Arc::new(pts);
        self.key = Some(key);
    }

    /// The plot item drawing these points as discs of `radius` (points).
    pub fn item(&self, name: &str, radius: f32) -> RasterScatter {
        RasterScatter::new(name, self.points.clone(), self.bounds, radius, self.key.unwrap_or(0), &self.raster)
    }

    /// The dataset row of the point nearest to the pointer `px` (screen), within `max_px`.
    pub fn nearest(&self, plot_ui: &egui_plot::PlotUi, px: egui::Pos2, max_px: f32) -> Option<usize> {
        self.rows
            .iter()
            .map(|(i, p)| (*i, plot_ui.screen_from_plot(PlotPoint::new(p[0], p[1])).distance(px)))
            .filter(|(_, d)| *d < max_px)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discs_land_where_their_points_are_and_later_points_cover_earlier_ones() {
        let red = Color32::from_rgb(255, 0, 0);
        let blue = Color32::from_rgb(0, 0, 255);
        let img =
            splat([20, 10], [(pos2(5.0, 5.0), red), (pos2(15.0, 5.0), red), (pos2(15.0, 5.0), blue)].into_iter(), 2.0);
        let at = |x: usize, y: usize| img.pixels[y * 20 + x];
        assert_eq!(at(4, 4), red);
        assert_eq!(at(14, 4), blue);
        // Far from both discs: nothing drawn.
        assert_eq!(at(10, 5), Color32::TRANSPARENT);
        assert_eq!(at(0, 0), Color32::TRANSPARENT);
        // The rim is partly covered (anti-aliased).
        let rim = at(6, 3);
        assert!(rim.a() > 0 && rim.a() < 255, "{rim:?}");
        // Points off the image are skipped without panicking.
        let off = splat([4, 4], [(pos2(-10.0, 2.0), red), (pos2(2.0, 50.0), red)].into_iter(), 1.5);
        assert!(off.pixels.iter().all(|&p| p == Color32::TRANSPARENT));
        assert!(occupied_tiles(&off).is_empty());
    }

    #[test]
    fn only_tiles_with_points_are_drawn() {
        let red = Color32::from_rgb(255, 0, 0);
        // 100 × 40 pixels: tiles of 32 (the last column and row are partial).
        let img = splat([100, 40], [(pos2(5.0, 5.0), red), (pos2(98.0, 38.0), red)].into_iter(), 1.0);
        assert_eq!(occupied_tiles(&img), vec![[0, 0, 32, 32], [96, 32, 4, 8]]);
    }
}
