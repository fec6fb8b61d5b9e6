//! [`History::plot`]: the training curves drawn to a PNG or SVG file with plotters, and the
//! backend that sets their text with the bundled font. Only built with the `plot` feature.

use std::path::Path;
use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, ScaleFont, point};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{BackendColor, BackendCoord, BackendTextStyle, DrawingErrorKind};

use super::History;
use crate::error::{Error, Result};
use crate::io::write_atomically;

/// The size of one panel, in pixels.
const PANEL: (u32, u32) = (640, 480);
/// matplotlib's first two colours, `tab:blue` and `tab:orange`.
const TRAIN_COLOR: RGBColor = RGBColor(31, 119, 180);
const VAL_COLOR: RGBColor = RGBColor(255, 127, 14);
/// Series with at most this many points also get a marker at each point.
const MAX_MARKED: usize = 40;
/// Font sizes (plotters' sizes: the pixel height of ascent − descent).
const TITLE_SIZE: f64 = 22.0;
const AXIS_LABEL_SIZE: f64 = 18.0;
const TICK_SIZE: f64 = 14.0;
const LEGEND_SIZE: f64 = 15.0;
/// The bundled font (licence: `assets/fonts/LICENSE-DejaVu.txt`).
static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// One panel: a title, a y-axis label and up to two curves.
struct Panel<'a> {
    title: String,
    y_label: String,
    /// (legend label, values, is validation)
    curves: Vec<(String, &'a [f64], bool)>,
}

pub(super) fn plot(history: &History, path: &Path) -> Result<()> {
    let fail = |reason: String| Error::Plot { path: path.to_path_buf(), reason };
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    if !matches!(ext.as_deref(), Some("png" | "svg")) {
        return Err(fail("unsupported file extension: use .png or .svg".to_string()));
    }
    if history.epochs() == 0 {
        return Err(fail("the history has no epochs".to_string()));
    }
    let panels = panels(history);
    if panels.is_empty() {
        return Err(fail("the history has neither a loss nor a metric to plot".to_string()));
    }
    let font = ensure_font().ok_or_else(|| fail("cannot load the bundled font".to_string()))?;

    let size = (PANEL.0 * panels.len() as u32, PANEL.1);
    let bytes = if ext.as_deref() == Some("png") {
        let mut rgb = vec![0u8; size.0 as usize * size.1 as usize * 3];
        {
            let backend = Typeset { inner: BitMapBackend::with_buffer(&mut rgb, size), font };
            let root = backend.into_drawing_area();
            draw(&root, &panels, history.epochs()).map_err(&fail)?;
            root.present().map_err(|e| fail(e.to_string()))?;
        }
        encode_png(&rgb, size).map_err(|e| fail(format!("cannot encode the PNG: {e}")))?
    } else {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
            draw(&root, &panels, history.epochs()).map_err(&fail)?;
            root.present().map_err(|e| fail(e.to_string()))?;
        }
        svg.into_bytes()
    };
    write_atomically(path, &bytes)
}

/// The bundled font, also registered as plotters' `sans-serif` (which plotters measures
/// text with) unless the program registered a `sans-serif` of its own.
fn ensure_font() -> Option<FontRef<'static>> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| {
        let font = FontRef::try_from_slice(DEJAVU_SANS).ok()?;
        let present = ("sans-serif", 12.0).into_font().box_size("0").is_ok();
        if !present {
            register_font("sans-serif", FontStyle::Normal, DEJAVU_SANS).ok()?;
        }
        Some(font)
    })
    .clone()
}

/// The loss panel and the metric panel, those that have something to show.
fn panels(history: &History) -> Vec<Panel<'_>> {
    let mut panels = Vec::new();
    if history.get("loss").is_some() || history.get("val_loss").is_some() {
        panels.push(panel(history, "loss"));
    }
    let bases: Vec<&str> = history.names().into_iter().map(|n| n.strip_prefix("val_").unwrap_or(n)).collect();
    let metric = bases
        .iter()
        .find(|b| **b == "accuracy")
        .or_else(|| bases.iter().find(|b| !matches!(**b, "loss" | "lr" | "learning_rate")));
    if let Some(metric) = metric {
        panels.push(panel(history, metric));
    }
    panels
}

fn panel<'a>(history: &'a History, base: &str) -> Panel<'a> {
    let train = history.get(base);
    let val = history.get(&format!("val_{base}"));
    let word = base.replace('_', " ");
    let title = match (train.is_some(), val.is_some()) {
        (true, true) => format!("Training and validation {word}"),
        (true, false) => format!("Training {word}"),
        _ => format!("Validation {word}"),
    };
    let mut curves = Vec::new();
    if let Some(s) = train {
        curves.push((format!("Training {word}"), s, false));
    }
    if let Some(s) = val {
        curves.push((format!("Validation {word}"), s, true));
    }
    Panel { title, y_label: base.to_string(), curves }
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    panels: &[Panel<'_>],
    epochs: usize,
) -> std::result::Result<(), String> {
    let text = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(text)?;
    let areas = root.split_evenly((1, panels.len()));
    for (area, panel) in areas.iter().zip(panels) {
        draw_panel(area, panel, epochs).map_err(text)?;
    }
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel<'_>,
    epochs: usize,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    // Epochs count from 1; NaN and ±∞ are left out and the other points joined.
    let points: Vec<Vec<(i64, f64)>> = panel
        .curves
        .iter()
        .map(|(_, values, _)| {
            values.iter().enumerate().filter(|(_, v)| v.is_finite()).map(|(i, &v)| (i as i64 + 1, v)).collect()
        })
        .collect();
    let (y_lo, y_hi) = y_range(points.iter().flatten().map(|p| p.1));
    let (x_lo, x_hi) = if epochs == 1 { (0, 2) } else { (1, epochs as i64) };

    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", TITLE_SIZE))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(panel.y_label.as_str())
        .axis_desc_style(("sans-serif", AXIS_LABEL_SIZE))
        .label_style(("sans-serif", TICK_SIZE))
        .x_labels(epochs.clamp(2, 10))
        .y_labels(8)
        .y_label_formatter(&|y| format_tick(*y, y_hi - y_lo))
        .bold_line_style(RGBColor(225, 225, 225))
        .light_line_style(TRANSPARENT)
        .draw()?;

    for ((label, _, is_val), pts) in panel.curves.iter().zip(&points) {
        let color = if *is_val { VAL_COLOR } else { TRAIN_COLOR };
        let style = color.stroke_width(2);
        if *is_val {
            chart
                .draw_series(DashedLineSeries::new(pts.iter().copied(), 8, 5, style))?
                .label(label.as_str())
                .legend(move |(x, y)| DashedPathElement::new(vec![(x, y), (x + 24, y)], 8, 5, style));
        } else {
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), style))?
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
        }
        if pts.len() <= MAX_MARKED {
            let marker = if *is_val { color.stroke_width(2) } else { color.filled() };
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, marker)))?;
        }
    }

    // Where the legend covers the fewest points of the curves, as matplotlib's "best".
    let (width, height) = chart.plotting_area().dim_in_pixel();
    let longest = panel.curves.iter().map(|c| c.0.chars().count()).max().unwrap_or(0);
    let legend_box = (
        (longest as f64 * 0.6 * LEGEND_SIZE + 60.0) / width as f64,
        (panel.curves.len() as f64 * 22.0 + 24.0) / height as f64,
    );
    let normalized: Vec<Vec<(f64, f64)>> = points
        .iter()
        .map(|pts| {
            pts.iter().map(|&(x, y)| ((x - x_lo) as f64 / (x_hi - x_lo) as f64, (y - y_lo) / (y_hi - y_lo))).collect()
        })
        .collect();
    chart
        .configure_series_labels()
        .position(legend_position(&normalized, legend_box))
        .label_font(("sans-serif", LEGEND_SIZE))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .margin(10)
        .draw()?;
    Ok(())
}

/// The corner whose legend box (a fraction of the plot's width and height) covers the fewest
/// points of the curves, sampled along their segments; coordinates are in `[0, 1]`, y up.
fn legend_position(curves: &[Vec<(f64, f64)>], (w, h): (f64, f64)) -> SeriesLabelPosition {
    let corners = [
        (SeriesLabelPosition::UpperRight, 1.0 - w, 1.0 - h),
        (SeriesLabelPosition::LowerRight, 1.0 - w, 0.0),
        (SeriesLabelPosition::UpperLeft, 0.0, 1.0 - h),
        (SeriesLabelPosition::LowerLeft, 0.0, 0.0),
    ];
    let mut samples = Vec::new();
    for curve in curves {
        samples.extend(curve.first().copied());
        for pair in curve.windows(2) {
            let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
            samples.extend((1..=16).map(|k| {
                let t = k as f64 / 16.0;
                (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t)
            }));
        }
    }
    let covered = |&(_, x, y): &(SeriesLabelPosition, f64, f64)| {
        samples.iter().filter(|&&(px, py)| px >= x && px <= x + w && py >= y && py <= y + h).count()
    };
    let best = corners.iter().min_by_key(|c| covered(c)).expect("four corners");
    best.0.clone()
}

/// The y range: the finite values with a 5 % margin, widened when they are all equal.
fn y_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    let pad = if span > 0.0 { span * 0.05 } else { (hi.abs() * 0.05).max(0.05) };
    (lo - pad, hi + pad)
}

/// A y tick with as many decimals as the span of the axis needs (0.1 steps: 2 decimals).
fn format_tick(y: f64, span: f64) -> String {
    let decimals = if span > 0.0 { (1.0 - span.log10().floor()).clamp(0.0, 8.0) as usize } else { 2 };
    format!("{y:.decimals$}")
}

/// Encodes 8-bit RGB pixels as a PNG.
fn encode_png(rgb: &[u8], (width, height): (u32, u32)) -> std::result::Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(out)
}

/// A bitmap backend that draws text itself. plotters' ab_glyph renderer places each glyph
/// at the pen position without its left side bearing, so kerned pairs overlap ("Tr") and
/// spacing is uneven; this draws every glyph at its proper place, inside the box plotters
/// measured for the text (so layouts are unchanged), with the capitals centred in it.
struct Typeset<B> {
    inner: B,
    font: FontRef<'static>,
}

impl<B: DrawingBackend> DrawingBackend for Typeset<B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> std::result::Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> std::result::Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> std::result::Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: plotters_backend::BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> std::result::Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: plotters_backend::BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> std::result::Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: plotters_backend::BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> std::result::Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: plotters_backend::BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> std::result::Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: plotters_backend::BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> std::result::Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> std::result::Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> std::result::Result<(), DrawingErrorKind<B::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let ((x0, y0), (x1, y1)) = style.layout_box(text).map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
        let (width, height) = (x1 - x0, y1 - y0);
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => -width,
            HPos::Center => -width / 2,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let font = self.font.as_scaled(style.size() as f32);
        let h_glyph = font.glyph_id('H').with_scale_and_position(font.scale(), point(0.0, 0.0));
        let cap_height = font.outline_glyph(h_glyph).map_or(0.6 * font.height(), |o| -o.px_bounds().min.y);
        let baseline = (height as f32 + cap_height) / 2.0;

        let transform = style.transform();
        let (w, h) = self.inner.get_size();
        let mut pixels = Vec::new();
        let mut pen = 0.0f32;
        let mut previous = None;
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = previous {
                pen += font.kern(p, id);
            }
            previous = Some(id);
            let glyph = id.with_scale_and_position(font.scale(), point(pen, baseline));
            pen += font.h_advance(id);
            if let Some(outline) = font.outline_glyph(glyph) {
                let b = outline.px_bounds();
                outline.draw(|x, y, coverage| {
                    pixels.push((b.min.x as i32 + x as i32, b.min.y as i32 + y as i32, coverage));
                });
            }
        }
        for (x, y, coverage) in pixels {
            if coverage <= 0.0 {
                continue;
            }
            let (x, y) = transform.transform(x + dx, y + dy);
            let (x, y) = (pos.0 + x, pos.1 + y);
            if x >= 0 && y >= 0 && (x as u32) < w && (y as u32) < h {
                let alpha = color.alpha * f64::from(coverage.min(1.0));
                self.inner.draw_pixel((x, y), BackendColor { alpha, rgb: color.rgb })?;
            }
        }
        Ok(())
    }
}
