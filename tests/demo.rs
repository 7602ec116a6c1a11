//! `macs-bridge demo` as a newcomer runs it: it must pass on a machine with only tmux.

#[test]
fn the_demo_delivers_every_round() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_macs-bridge"))
        .arg("demo")
        .env_remove("TMUX")
        .env_remove("TMUX_SOCKET")
        .env_remove("MACS_SESSION")
        .output()
        .expect("run the demo");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches("worker asks   [").count(), 3, "{text}");
    assert!(text.contains("(3/3)"), "{text}");
    assert!(text.contains("done: 3 requests answered"), "{text}");
}
