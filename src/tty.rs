//! The terminal the command runs in, as the person's seats (`chat`, `up`) need it.

/// `(columns, rows)` of the terminal on standard output, when it is one.
pub fn stdout_size() -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize into the struct we own, or fails.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    ok.then_some((ws.ws_col, ws.ws_row))
}
