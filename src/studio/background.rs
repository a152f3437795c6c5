//! Reading the project off the UI thread: a query runs on a thread of its own and its answer is picked
//! up by a later frame, so a tab that shows a streaming run never stalls the window while SQLite reads
//! thousands of rows and their JSON.

use std::sync::mpsc::{Receiver, TryRecvError, channel};

use eframe::egui;

/// One query in flight at a time; its answer replaces the tab's view when it arrives.
pub struct BackgroundQuery<T> {
    rx: Option<Receiver<Result<T, String>>>,
}

impl<T> Default for BackgroundQuery<T> {
    fn default() -> Self {
        BackgroundQuery { rx: None }
    }
}

impl<T: Send + 'static> BackgroundQuery<T> {
    /// Whether a query is running.
    pub fn busy(&self) -> bool {
        self.rx.is_some()
    }

    /// The answer, once it has arrived (`None` while running or idle); `Some(Err(..))` when the query
    /// panicked (with its message) or its thread died without answering. Either way the query is over and
    /// the next refresh may start one.
    pub fn poll(&mut self) -> Option<Result<T, String>> {
        let got = match self.rx.as_ref()?.try_recv() {
            Ok(v) => v,
            Err(TryRecvError::Empty) => return None,
            Err(TryRecvError::Disconnected) => Err("the query stopped unexpectedly".to_string()),
        };
        self.rx = None;
        Some(got)
    }

    /// Run `query` on a named thread and repaint when it answers. Returns the error when no thread could
    /// be started.
    pub fn start(
        &mut self,
        ctx: &egui::Context,
        name: &str,
        query: impl FnOnce() -> T + Send + 'static,
    ) -> Result<(), String> {
        let (tx, rx) = channel();
        let ctx = ctx.clone();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(query))
                    .map_err(|p| format!("internal error: {}", crate::panic_message(&*p)));
                let _ = tx.send(answer);
                ctx.request_repaint();
            })
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        self.rx = Some(rx);
        Ok(())
    }
}
