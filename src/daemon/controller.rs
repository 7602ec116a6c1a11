//! The `exec` controller backend: a command run once per request, with the wrapped request on
//! standard input and the answer on standard output. The chain that decides when it runs
//! lives in the core (`crate::core::requests`); this is only the process.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::core::ExecDone;

/// The command line for a request: the configured words, and for `codex` the words of
/// `MACS_CODEX_ARGS` right after the program name.
pub fn exec_argv(cmd: &str, codex_args: Option<&str>) -> Result<Vec<String>, String> {
    let mut argv = shell_words::split(cmd).map_err(|e| format!("bad command {cmd:?}: {e}"))?;
    if argv.is_empty() {
        return Err("no command configured (controller_cmd / --controller-cmd)".into());
    }
    let is_codex = std::path::Path::new(&argv[0])
        .file_name()
        .is_some_and(|n| n == "codex");
    if let (true, Some(extra)) = (is_codex, codex_args) {
        let extra = shell_words::split(extra).map_err(|e| format!("bad MACS_CODEX_ARGS: {e}"))?;
        argv.splice(1..1, extra);
    }
    Ok(argv)
}

const MAX_STDOUT: u64 = 1 << 20;
const STDERR_TAIL: usize = 2000;

/// Runs the command once with `prompt` on standard input and reports on `done`.
pub fn spawn_exec(
    id: String,
    argv: Vec<String>,
    prompt: String,
    timeout: Duration,
    codex_home: Option<String>,
    done: mpsc::UnboundedSender<ExecDone>,
) {
    tokio::spawn(async move {
        let result = run_exec(&argv, &prompt, timeout, codex_home.as_deref()).await;
        let _ = done.send(ExecDone { id, result });
    });
}

async fn run_exec(
    argv: &[String],
    prompt: &str,
    timeout: Duration,
    codex_home: Option<&str>,
) -> Result<String, String> {
    let (program, args) = argv.split_first().ok_or("no command")?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(home) = codex_home {
        cmd.env("CODEX_HOME", home);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("could not start {program:?}: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let prompt = prompt.to_string();
    let writer = tokio::spawn(async move {
        // A command that does not read its input is fine: ignore a broken pipe.
        let _ = stdin.write_all(prompt.as_bytes()).await;
    });
    let out = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = (&mut stdout).take(MAX_STDOUT).read_to_end(&mut buf).await;
        buf
    });
    let err = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = (&mut stderr).take(MAX_STDOUT).read_to_end(&mut buf).await;
        buf
    });
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => return Err(format!("{program:?} failed: {e}")),
        Err(_) => {
            let _ = child.kill().await;
            return Err(format!(
                "{program:?} did not answer within {}s and was stopped",
                timeout.as_secs()
            ));
        }
    };
    let _ = writer.await;
    let stdout = out.await.unwrap_or_default();
    let stderr = err.await.unwrap_or_default();
    let stderr = String::from_utf8_lossy(&stderr);
    let stderr = tail(stderr.trim(), STDERR_TAIL);
    if !status.success() {
        let code = status
            .code()
            .map(|c| format!("exit code {c}"))
            .unwrap_or_else(|| "a signal".into());
        return Err(if stderr.is_empty() {
            format!("{program:?} ended with {code}")
        } else {
            format!("{program:?} ended with {code}; stderr: {stderr}")
        });
    }
    let text = String::from_utf8_lossy(&stdout).trim().to_string();
    if text.is_empty() {
        return Err(format!("{program:?} printed no answer"));
    }
    Ok(text)
}

fn tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &s[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codex_gets_its_extra_arguments() {
        assert_eq!(
            exec_argv("codex exec -", Some("--model m -c 'a=b c'")).unwrap(),
            vec!["codex", "--model", "m", "-c", "a=b c", "exec", "-"]
        );
        assert_eq!(
            exec_argv("/opt/bin/claude -p", Some("--x")).unwrap(),
            vec!["/opt/bin/claude", "-p"]
        );
        assert!(exec_argv("", None).is_err());
        assert!(exec_argv("a 'b", None).is_err());
    }

    #[tokio::test]
    async fn exec_reports_output_failures_and_timeouts() {
        let t = Duration::from_secs(10);
        let ok = run_exec(
            &["sh".into(), "-c".into(), "read x; echo \"got $x\"".into()],
            "hello\n",
            t,
            None,
        )
        .await;
        assert_eq!(ok.unwrap(), "got hello");
        let fail = run_exec(
            &["sh".into(), "-c".into(), "echo oops >&2; exit 7".into()],
            "",
            t,
            None,
        )
        .await;
        let e = fail.unwrap_err();
        assert!(e.contains("exit code 7") && e.contains("oops"), "{e}");
        let empty = run_exec(&["true".into()], "", t, None).await;
        assert!(empty.unwrap_err().contains("no answer"));
        let slow = run_exec(
            &["sleep".into(), "30".into()],
            "",
            Duration::from_millis(200),
            None,
        )
        .await;
        assert!(slow.unwrap_err().contains("did not answer"));
        let missing = run_exec(&["/no/such/program".into()], "", t, None).await;
        assert!(missing.unwrap_err().contains("could not start"));
    }
}
