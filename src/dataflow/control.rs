//! A cluster's stop requests: a SIGTERM (or SIGINT) reaches one process, but every process
//! must stop, or the others keep reading while the one signalled waits for them (and gives up
//! after `--stop-timeout`, leaving them to fail on the closed connection). Each worker of a
//! cluster runs a small second dataflow whose only input is "a stop was asked here"; it is
//! broadcast to every worker, which asks its own process to stop.

use super::shared::Shared;
use std::sync::Arc;
use std::time::Duration;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::InputHandle;
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::operators::{Input, Inspect};

/// How often a worker looks at its process's stop flag while it would otherwise park.
pub(super) const POLL: Duration = Duration::from_millis(50);

/// One worker's end of the stop channel.
pub(super) struct StopChannel {
    input: Option<InputHandle<u64, CapacityContainerBuilder<Vec<u8>>>>,
    shared: Arc<Shared>,
    sent: bool,
}

impl StopChannel {
    /// Builds the channel's dataflow on `worker`: a stop heard from any worker asks this
    /// process to stop.
    pub(super) fn install(worker: &mut timely::worker::Worker, shared: Arc<Shared>) -> Self {
        let heard = shared.clone();
        let input = worker.dataflow::<u64, _, _>(|scope| {
            let (input, stream) = scope.new_input::<Vec<u8>>();
            stream.broadcast().inspect(move |_| {
                if !heard.stop_requested() {
                    tracing::info!("stopping: another process of the cluster was asked to stop");
                    heard.request_stop();
                }
            });
            input
        });
        Self {
            input: Some(input),
            shared,
            sent: false,
        }
    }

    /// Between steps: tells every worker once this process was asked to stop, and closes the
    /// channel once this worker's pipeline is `done` (so the channel's dataflow can end too).
    pub(super) fn tend(&mut self, done: bool) {
        let Some(input) = self.input.as_mut() else {
            return;
        };
        if !self.sent && self.shared.stop_requested() {
            input.send(1u8);
            input.advance_to(1);
            self.sent = true;
        }
        if done {
            self.input = None;
        }
    }

    /// How long the worker may park: a while while the channel is open (to look at the stop
    /// flag), else until something happens.
    pub(super) fn park(&self) -> Option<Duration> {
        self.input.as_ref().map(|_| POLL)
    }
}
