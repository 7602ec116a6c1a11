//! The figures: the table of latencies and what each case measured besides.

use super::*;

/// The 1-minute load average: other work on the machine shows in the p99s.
pub(super) fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

pub(super) fn print_table(results: &[CaseResult]) {
    println!();
    println!(
        "| panes | latency (ms) | n | bridge p50 | bridge p99 | baseline p50 | baseline p99 | p50 ratio | p99 ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in results {
        let rows: [(&str, &[f64], &[f64]); 3] = [
            (
                "detection: end marker printed → inbox file",
                &r.bridge.detect,
                &r.baseline.detect,
            ),
            (
                "delivery: outbox file → text on screen",
                &r.bridge.typed,
                &r.baseline.typed,
            ),
            (
                "delivery: outbox file → command ran",
                &r.bridge.ran,
                &r.baseline.ran,
            ),
        ];
        for (what, b, p) in rows {
            let n = if b.len() == p.len() {
                b.len().to_string()
            } else {
                format!("{}/{}", b.len(), p.len())
            };
            let (b50, b99, p50, p99) = (pct(b, 50.0), pct(b, 99.0), pct(p, 50.0), pct(p, 99.0));
            println!(
                "| {} | {what} | {n} | {b50:.1} | {b99:.1} | {p50:.1} | {p99:.1} | {:.1}× | {:.1}× |",
                r.panes,
                p50 / b50,
                p99 / b99
            );
        }
    }
    println!();
    for r in results {
        println!(
            "{} pane(s): tmux's share (end marker printed → seen in %output by the bench): \
             p50 {:.2} / p99 {:.2} ms (bridge side), p50 {:.2} / p99 {:.2} ms (baseline side)",
            r.panes,
            pct(&r.bridge.hop, 50.0),
            pct(&r.bridge.hop, 99.0),
            pct(&r.baseline.hop, 50.0),
            pct(&r.baseline.hop, 99.0),
        );
        println!(
            "  daemon's `request` line after the inotify event: p50 {:.2} / p99 {:.2} ms ({} of {} matched); \
             `delivered` lines: {}; other outcomes: {}",
            pct(&r.event_lag, 50.0),
            pct(&r.event_lag, 99.0),
            r.event_lag.len(),
            r.bridge.filed.len(),
            r.delivered,
            if r.other_outcomes.is_empty() {
                "none".to_string()
            } else {
                r.other_outcomes.join("; ")
            }
        );
        println!("  worker before the run: {}", r.status);
        println!(
            "  CPU while both sides ran: daemon {:.1} %, tmux server {:.1} % of one core",
            r.cpu.0, r.cpu.1
        );
        println!(
            "  baseline's costs: a capture-pane process p50 {:.2} / p99 {:.2} ms ({} looks); \
             Mailbox::write_request (as the daemon's, with its fsyncs) p50 {:.2} / p99 {:.2} ms",
            pct(&r.looks, 50.0),
            pct(&r.looks, 99.0),
            r.looks.len(),
            pct(&r.writes, 50.0),
            pct(&r.writes, 99.0),
        );
        for (side, s) in [("bridge", &r.bridge), ("baseline", &r.baseline)] {
            if !s.failures.is_empty() {
                println!("  {side}: {} failed sample(s):", s.failures.len());
                for f in &s.failures {
                    println!("    {f}");
                }
            }
            let max = |v: &[f64]| v.iter().copied().fold(f64::NAN, f64::max);
            println!(
                "  {side}: max detection {:.1} ms, max delivery {:.1} ms",
                max(&s.detect),
                max(&s.typed)
            );
        }
    }
}
