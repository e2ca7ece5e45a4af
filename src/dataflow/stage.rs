//! What every stage after the source shares: its state is a [`Stage`], told what arrived
//! ([`Stage::on_input`]) and then that the input frontier may have moved
//! ([`Stage::on_frontier`]); [`unary`] makes the timely operator, which only forwards to it
//! (inside an `operator{name}` span) and sends what the stage emitted.

use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::ParallelizationContract;
use timely::dataflow::operators::InputCapability;
use timely::dataflow::operators::{Capability, Operator};
use timely::progress::frontier::AntichainRef;
use timely::scheduling::Activator;

/// The time data arrived at, from which a stage may keep a capability.
pub(super) struct Arrived<'a>(&'a InputCapability<i64>);

impl Arrived<'_> {
    /// The time.
    pub(super) fn time(&self) -> i64 {
        self.0.least().copied().unwrap_or(i64::MIN)
    }
    /// A capability at the time, to emit at it (or later) now or after this activation.
    pub(super) fn retain(&self) -> Option<Capability<i64>> {
        self.0.retain_least(0)
    }
}

/// What a stage emits during one activation, each item at a capability's time.
pub(super) struct Emit<O> {
    batches: Vec<(Capability<i64>, Vec<O>)>,
}

impl<O> Emit<O> {
    /// Emits `items` at `cap`'s time.
    pub(super) fn give(&mut self, cap: &Capability<i64>, items: impl IntoIterator<Item = O>) {
        let items: Vec<O> = items.into_iter().collect();
        if items.is_empty() {
            return;
        }
        match self.batches.last_mut() {
            Some((c, v)) if c.time() == cap.time() => v.extend(items),
            _ => self.batches.push((cap.clone(), items)),
        }
    }
}

/// A stage's state on one worker.
pub(super) trait Stage: 'static {
    /// What it takes.
    type In;
    /// What it emits.
    type Out;
    /// `data` arrived at `at` (drain what is taken).
    fn on_input(&mut self, at: &Arrived<'_>, data: &mut Vec<Self::In>, out: &mut Emit<Self::Out>);
    /// After the inputs of an activation: the input frontier is `frontier` (empty once the
    /// input is complete).
    fn on_frontier(&mut self, frontier: AntichainRef<'_, i64>, out: &mut Emit<Self::Out>);
}

/// The operator `name` of the stage `make` builds (given the operator's activator, to be woken
/// later), with its input distributed by `pact`.
pub(super) fn unary<'s, S, P>(
    stream: StreamVec<'s, i64, S::In>,
    pact: P,
    name: &'static str,
    make: impl FnOnce(Activator) -> S + 'static,
) -> StreamVec<'s, i64, S::Out>
where
    S: Stage,
    S::In: Clone + 'static,
    S::Out: Clone + 'static,
    P: ParallelizationContract<i64, Vec<S::In>>,
{
    unary_from(stream, pact, name, move |act, _| make(act))
}

/// As [`unary`], with the operator's initial capability handed to `make` (a stage restored
/// from a checkpoint keeps one for what its restored state will emit; dropping it lets the
/// frontier pass).
pub(super) fn unary_from<'s, S, P>(
    stream: StreamVec<'s, i64, S::In>,
    pact: P,
    name: &'static str,
    make: impl FnOnce(Activator, Capability<i64>) -> S + 'static,
) -> StreamVec<'s, i64, S::Out>
where
    S: Stage,
    S::In: Clone + 'static,
    S::Out: Clone + 'static,
    P: ParallelizationContract<i64, Vec<S::In>>,
{
    let scope = stream.scope();
    stream.unary_frontier::<CapacityContainerBuilder<Vec<S::Out>>, _, _, _>(
        pact,
        name,
        move |cap, info| {
            let mut stage = make(scope.activator_for(info.address), cap);
            let span = tracing::debug_span!("operator", name);
            move |(input, frontier), output| {
                let _span = span.enter();
                let mut emit = Emit {
                    batches: Vec::new(),
                };
                input.for_each(|cap, data| stage.on_input(&Arrived(&cap), data, &mut emit));
                stage.on_frontier(frontier.frontier(), &mut emit);
                for (cap, items) in emit.batches {
                    output.session(&cap).give_iterator(items.into_iter());
                }
            }
        },
    )
}

/// The least time of a frontier (`i64::MAX` once it is empty: everything is complete).
pub(super) fn least(f: AntichainRef<'_, i64>) -> i64 {
    f.iter().copied().min().unwrap_or(i64::MAX)
}
