//! The figures: tables for the store, the floods and the latency, and the machine.

use super::*;

pub(super) fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

/// 1234567 → "1,234,567".
pub(super) fn thousands(n: f64) -> String {
    let s = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(super) fn per_min(n: u64, d: Duration) -> f64 {
    n as f64 * 60.0 / d.as_secs_f64().max(1e-9)
}

pub(super) fn print_store(cases: &[StoreCase]) {
    println!();
    println!("| store alone: `add_message` | recipients | messages | s | messages/min | delivery rows/min |");
    println!("|---|---|---|---|---|---|");
    for c in cases {
        let m = per_min(c.messages, c.elapsed);
        println!(
            "| {} | {} | {} | {:.1} | {} | {} |",
            c.what,
            c.recipients,
            thousands(c.messages as f64),
            c.elapsed.as_secs_f64(),
            thousands(m),
            thousands(m * c.recipients as f64)
        );
    }
}

pub(super) fn print_floods(floods: &[Flood]) {
    println!();
    println!(
        "| through the daemon: `chat.send` | conns × in flight | accepted | s | messages/min | delivery rows/min | call p50 ms | call p99 ms | daemon CPU | tmux CPU |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for f in floods {
        let m = per_min(f.ok, f.elapsed);
        println!(
            "| {} | {} × {} | {} | {:.1} | {} | {} | {:.2} | {:.2} | {:.0} % | {:.0} % |",
            f.what,
            f.conns,
            f.depth,
            thousands(f.ok as f64),
            f.elapsed.as_secs_f64(),
            thousands(m),
            thousands(m * f.rows_per_message as f64),
            pct(&f.rtt, 50.0),
            pct(&f.rtt, 99.0),
            f.cpu.first().copied().unwrap_or(f64::NAN),
            f.cpu.get(1).copied().unwrap_or(f64::NAN),
        );
    }
    for f in floods.iter().filter(|f| f.errors > 0) {
        println!(
            "  {}: {} calls failed; the first: {}",
            f.what,
            f.errors,
            f.first_error.as_deref().unwrap_or("?")
        );
    }
}

pub(super) fn print_latency(l: &Latency) {
    println!();
    println!(
        "| latency, {AGENTS} idle agents (ms from just before `chat.send`) | n | p50 | p90 | p99 | max |"
    );
    println!("|---|---|---|---|---|---|");
    let rows: [(&str, &[f64]); 3] = [
        ("`chat.send` answered (routed, persisted)", &l.reply),
        ("text on screen in the agent's pane", &l.shown),
        ("`delivery.update` delivered", &l.delivered),
    ];
    for (what, v) in rows {
        println!(
            "| {what} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            v.len(),
            pct(v, 50.0),
            pct(v, 90.0),
            pct(v, 99.0),
            max(v)
        );
    }
    println!();
    println!(
        "  answers that said the recipient was queued: {}; CPU while sampling: daemon {:.1} %, tmux server {:.1} % of one core",
        l.queued,
        l.cpu.first().copied().unwrap_or(f64::NAN),
        l.cpu.get(1).copied().unwrap_or(f64::NAN),
    );
    if !l.failures.is_empty() {
        println!("  {} failed sample(s):", l.failures.len());
        for f in &l.failures {
            println!("    {f}");
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// The machine, and its load average when the bench starts.
pub(super) fn machine() -> String {
    let load = fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_default();
    format!("{}, load average {load} at the start", common::machine())
}
