//! The bench report as a markdown table and a PNG plot (throughput and loss against the
//! offered rate).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::anyhow;
use plotters::prelude::*;

use crate::bench::{BenchReport, Trial};

/// Where the plot's font is looked for (Debian: fonts-dejavu-core).
const FONT_PATHS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

fn pct(x: f64) -> String {
    format!("{:.4}", x * 100.0)
}

fn latency(t: &Trial) -> String {
    t.latency.as_ref().map_or("-".into(), |l| {
        format!("{:.1} / {:.1}", l.p50_s * 1e3, l.p99_s * 1e3)
    })
}

/// The report as markdown: what was measured, then one row per trial.
pub fn markdown(r: &BenchReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## {} {} ({})\n\n- version: {}\n- machine: {} CPUs, {}, kernel {}\n- command: `{}`\n- loss target: {} %",
        r.subject,
        r.protocol,
        r.mode,
        r.subject_version,
        r.machine.nproc,
        r.machine.cpu_model,
        r.machine.kernel,
        r.command,
        r.loss_target * 100.0
    );
    match r.headline_trial {
        Some(i) => {
            let _ = writeln!(
                s,
                "- headline (trial {}): {:.0} flows/s indexed at {} % loss, {:.2} collector CPU-s per million flows ({:.0} flows per CPU-second)",
                i + 1,
                r.indexed_flows_per_s,
                pct(r.loss_fraction),
                r.collector_cpu_s_per_million_flows,
                r.flows_per_cpu_second
            );
        }
        None => {
            let _ = writeln!(s, "- no trial met the loss target");
        }
    }
    if let Some(stop) = r.search_stop {
        let _ = writeln!(s, "- search stopped: {stop:?}");
    }
    let _ = writeln!(
        s,
        "\n| trial | asked pkt/s | offered flows/s | received flows/s | indexed flows/s | loss % | collector CPU s/M flows | collector CPU us/pkt | flows per CPU-s | generator CPU s/M flows | latency p50 / p99 ms | load 1m |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (i, t) in r.trials.iter().enumerate() {
        let _ =
            writeln!(
            s,
            "| {}{} | {} | {:.0} | {:.0} | {:.0} | {} | {:.2} | {} | {:.0} | {:.2} | {} | {:.1} |",
            i + 1,
            if Some(i) == r.headline_trial { " *" } else { "" },
            t.asked_packets_per_s
                .map_or("max".into(), |x| format!("{x:.0}")),
            t.offered_flows_per_s,
            t.received_flows_per_s,
            t.indexed_flows_per_s,
            pct(t.loss_fraction),
            t.collector_cpu_s_per_million_flows,
            t.collector_cpu_us_per_packet
                .map_or("-".into(), |x| format!("{x:.2}")),
            t.flows_per_cpu_second,
            t.generator_cpu_s_per_million_flows,
            latency(t),
            t.loadavg_end
        );
    }
    s
}

/// Registers DejaVu Sans for the plot's text, once; false when no font file is there.
fn font() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        for p in FONT_PATHS {
            if let Ok(bytes) = std::fs::read(p) {
                // the font table wants 'static bytes: leaked once per process
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

/// Draws indexed flows/s (top) and loss % (bottom) against offered flows/s into a PNG.
pub fn plot(r: &BenchReport, path: &Path) -> anyhow::Result<()> {
    if !font() {
        return Err(anyhow!(
            "no font for the plot (install fonts-dejavu-core: perf/peers/install.sh tools)"
        ));
    }
    let e = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());
    let mut pts: Vec<(f64, f64, f64)> = r
        .trials
        .iter()
        .map(|t| {
            (
                t.offered_flows_per_s,
                t.indexed_flows_per_s,
                t.loss_fraction * 100.0,
            )
        })
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let xmax = pts.iter().map(|p| p.0).fold(1.0, f64::max) * 1.1;
    let ymax = pts.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let lmax = pts.iter().map(|p| p.2).fold(0.0, f64::max).max(0.05) * 1.2;

    let root = BitMapBackend::new(path, (1000, 800)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let (top, bottom) = root.split_vertically(440);
    let title = format!(
        "{} {} - {} CPUs, {}",
        r.subject, r.protocol, r.machine.nproc, r.machine.cpu_model
    );
    let mut c = ChartBuilder::on(&top)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..xmax, 0f64..ymax)
        .map_err(|x| e(&x))?;
    let int = |v: &f64| format!("{v:.0}");
    c.configure_mesh()
        .x_desc("offered flows/s")
        .y_desc("indexed flows/s")
        .x_label_formatter(&int)
        .y_label_formatter(&int)
        .draw()
        .map_err(|x| e(&x))?;
    let diag = xmax.min(ymax);
    c.draw_series(LineSeries::new(
        [(0.0, 0.0), (diag, diag)],
        BLACK.mix(0.3).stroke_width(1),
    ))
    .map_err(|x| e(&x))?
    .label("no loss")
    .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.3)));
    c.draw_series(LineSeries::new(
        pts.iter().map(|p| (p.0, p.1)),
        BLUE.stroke_width(2),
    ))
    .map_err(|x| e(&x))?
    .label("indexed")
    .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    c.draw_series(
        pts.iter()
            .map(|p| Circle::new((p.0, p.1), 4, BLUE.filled())),
    )
    .map_err(|x| e(&x))?;
    c.configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|x| e(&x))?;

    let mut l = ChartBuilder::on(&bottom)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..xmax, 0f64..lmax)
        .map_err(|x| e(&x))?;
    l.configure_mesh()
        .x_desc("offered flows/s")
        .y_desc("loss %")
        .x_label_formatter(&int)
        .draw()
        .map_err(|x| e(&x))?;
    let target = r.loss_target * 100.0;
    l.draw_series(LineSeries::new(
        [(0.0, target), (xmax, target)],
        RED.mix(0.5).stroke_width(1),
    ))
    .map_err(|x| e(&x))?
    .label(format!("target {target} %"))
    .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.mix(0.5)));
    l.draw_series(LineSeries::new(
        pts.iter().map(|p| (p.0, p.2)),
        RED.stroke_width(2),
    ))
    .map_err(|x| e(&x))?
    .label("loss")
    .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.stroke_width(2)));
    l.draw_series(pts.iter().map(|p| Circle::new((p.0, p.2), 4, RED.filled())))
        .map_err(|x| e(&x))?;
    l.configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))?;
    Ok(())
}
