//! The hybrid scheduler, the one engine the features stage talks to: runs each batch of windows
//! where the [`Router`] says (the CPU reference or an accelerator, `cuda:N` or `emu:N`); keeps
//! up to the accelerator's depth of batches in flight on it and, under `auto`, spills a batch
//! to the CPU when that queue is full and the CPU is expected to finish it before the
//! accelerator could (else waits); recomputes a batch on the CPU when an engine fails it (no
//! batch is ever lost), and when the router asks for a cross-check, compares the two. What is
//! routed where, when an engine is dropped and what a cross-check concludes are the router's
//! rules, shared with the detector engine.
//!
//! Batches go in with [`Hybrid::submit`] and come out, possibly in another order, from
//! [`Hybrid::poll`], each with the ticket `submit` gave it.

use super::cost::{CostBook, EngineReport};
use super::router::{Check, Difference, Router};
use super::{ComputeBackend, ComputeError, FeatureBatch, Ticket, WindowBatch};
use crate::events::Stage;
use crate::stages::features::FeatureSet;
use std::collections::VecDeque;
use std::time::Instant;

pub use super::router::Policy;

#[cfg(test)]
mod tests;

struct Engine {
    backend: Box<dyn ComputeBackend>,
    /// Batches begun on this engine and not finished yet, oldest first.
    flight: VecDeque<(Ticket, WindowBatch)>,
}

/// A batch the scheduler has finished with.
#[derive(Debug)]
pub struct Completed {
    /// What [`Hybrid::submit`] returned for it.
    pub ticket: Ticket,
    /// The batch, given back.
    pub batch: WindowBatch,
    /// Its features; an error only when the CPU reference failed too.
    pub result: Result<FeatureBatch, ComputeError>,
}

/// The scheduler; engine 0 is always the CPU reference.
pub struct Hybrid {
    engines: Vec<Engine>,
    router: Router,
    next_ticket: Ticket,
    done: VecDeque<Completed>,
}

impl Hybrid {
    /// A scheduler over `cpu` and `others`; `cross_check` is the fraction of non-CPU batches
    /// recomputed on the CPU, `tolerance` the relative difference that gets logged.
    pub fn new(
        cpu: Box<dyn ComputeBackend>,
        others: Vec<Box<dyn ComputeBackend>>,
        policy: Policy,
        cross_check: f64,
        tolerance: f64,
    ) -> Self {
        let engines: Vec<Engine> = std::iter::once(cpu)
            .chain(others)
            .map(|backend| Engine {
                backend,
                flight: VecDeque::new(),
            })
            .collect();
        let names = engines.iter().map(|e| e.backend.name().to_string());
        let router = Router::new(
            Stage::Features,
            names,
            policy,
            cross_check,
            Check::Within(tolerance),
        );
        Self {
            engines,
            router,
            next_ticket: 0,
            done: VecDeque::new(),
        }
    }

    /// Makes the engines learn their costs in `book` (shared by the workers of a run) instead
    /// of on their own.
    pub fn share_costs(&mut self, book: &CostBook) {
        self.router.share_costs(book);
    }

    /// True when an accelerator is in use (batches are then worth filling up).
    pub fn accelerated(&self) -> bool {
        self.router.accelerated()
    }

    /// Batches submitted and not yet returned by [`Self::poll`].
    pub fn outstanding(&self) -> usize {
        self.done.len() + self.engines.iter().map(|e| e.flight.len()).sum::<usize>()
    }

    /// Per-engine counts so far.
    pub fn engine_reports(&self) -> Vec<EngineReport> {
        self.router.reports()
    }

    /// True when the CPU is expected to finish a batch of `values` values before full
    /// accelerator `i` could (its batches in flight first, then this one).
    fn cpu_sooner(&self, i: usize, values: usize) -> bool {
        let queued: f64 = self.engines[i]
            .flight
            .iter()
            .map(|(_, b)| self.router.predict(i, b.values.len() as f64))
            .sum();
        let cpu = self.router.predict(0, values as f64);
        self.router.samples(0) == 0 || cpu < queued + self.router.predict(i, values as f64)
    }

    /// Hands `batch` to an engine; its features come back from [`Self::poll`] under the
    /// returned ticket. Synchronous engines (the CPU) finish it before this returns.
    pub fn submit(&mut self, features: &FeatureSet, window_ms: i64, batch: WindowBatch) -> Ticket {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let mut i = self.router.route(batch.values.len() as f64, batch.len());
        let depth = self.engines[i].backend.depth();
        if i > 0 && depth > 0 {
            if self.engines[i].flight.len() >= depth {
                if self.router.policy() == Policy::Cheapest
                    && self.cpu_sooner(i, batch.values.len())
                {
                    self.router.spilled(i, batch.len());
                    i = 0;
                } else {
                    self.collect(i, features, window_ms, true);
                }
            }
            if i > 0 {
                let e = &mut self.engines[i];
                match e.backend.begin(ticket, features, window_ms, &batch) {
                    Ok(()) => {
                        e.flight.push_back((ticket, batch));
                        return ticket;
                    }
                    Err(err) => {
                        self.router.failed(i, &err, batch.len());
                        i = 0;
                    }
                }
            }
        }
        if i == 0 {
            let result = self.cpu(features, window_ms, &batch);
            self.done.push_back(Completed {
                ticket,
                batch,
                result,
            });
        } else {
            let started = Instant::now();
            let mut out = FeatureBatch::default();
            let outcome = self.engines[i]
                .backend
                .features(features, window_ms, &batch, &mut out)
                .map(|()| (out, started.elapsed().as_secs_f64()));
            self.settle(i, features, window_ms, ticket, batch, outcome);
        }
        ticket
    }

    /// Records what engine `i` (an accelerator) gave for a batch, recomputing it on the CPU
    /// when it failed, and queues the batch as completed.
    fn settle(
        &mut self,
        i: usize,
        features: &FeatureSet,
        window_ms: i64,
        ticket: Ticket,
        batch: WindowBatch,
        outcome: Result<(FeatureBatch, f64), ComputeError>,
    ) {
        let result = match outcome {
            Ok((out, secs)) => self.succeeded(i, features, window_ms, &batch, out, secs),
            Err(err) => {
                self.router.failed(i, &err, batch.len());
                self.cpu(features, window_ms, &batch)
            }
        };
        self.done.push_back(Completed {
            ticket,
            batch,
            result,
        });
    }

    /// Every batch finished since the last call; with `wait`, at least one when any is
    /// outstanding (blocking for the oldest in flight).
    pub fn poll(&mut self, features: &FeatureSet, window_ms: i64, wait: bool) -> Vec<Completed> {
        for i in 1..self.engines.len() {
            self.collect(i, features, window_ms, false);
        }
        if wait && self.done.is_empty() {
            let oldest = (1..self.engines.len())
                .filter_map(|i| self.engines[i].flight.front().map(|(t, _)| (*t, i)))
                .min();
            if let Some((_, i)) = oldest {
                self.collect(i, features, window_ms, true);
            }
        }
        self.done.drain(..).collect()
    }

    /// Takes engine `i`'s finished batches (with `wait`, blocking for its oldest first).
    fn collect(&mut self, i: usize, features: &FeatureSet, window_ms: i64, wait: bool) {
        let mut wait = wait;
        while !self.engines[i].flight.is_empty() {
            let finished = self.engines[i].backend.finish(wait);
            let Some(f) = finished else {
                if wait {
                    // An engine that cannot say when its batches finish has lost them: they
                    // are recomputed on the CPU rather than waited for forever.
                    let err = ComputeError::Device(format!(
                        "{} lost {} batches in flight",
                        self.router.name(i),
                        self.engines[i].flight.len()
                    ));
                    while let Some((ticket, batch)) = self.engines[i].flight.pop_front() {
                        self.settle(i, features, window_ms, ticket, batch, Err(err.clone()));
                    }
                }
                return;
            };
            wait = false;
            let flight = &mut self.engines[i].flight;
            let Some(k) = flight.iter().position(|(t, _)| *t == f.ticket) else {
                tracing::error!(
                    "{}: finished unknown batch {}",
                    self.router.name(i),
                    f.ticket
                );
                continue;
            };
            let (ticket, batch) = flight.remove(k).expect("position is in range");
            let outcome = f.result.map(|out| (out, f.busy_secs));
            self.settle(i, features, window_ms, ticket, batch, outcome);
        }
    }

    /// Counts a batch accelerator `i` computed, and cross-checks it when one is due.
    fn succeeded(
        &mut self,
        i: usize,
        features: &FeatureSet,
        window_ms: i64,
        batch: &WindowBatch,
        out: FeatureBatch,
        secs: f64,
    ) -> Result<FeatureBatch, ComputeError> {
        let work = batch.values.len() as f64;
        if !self.router.computed(i, batch.len(), work, secs) {
            return Ok(out);
        }
        let reference = self.cpu(features, window_ms, batch)?;
        let (mut abs, mut rel) = (0.0f64, 0.0f64);
        for (a, b) in reference.data.iter().zip(&out.data) {
            if a == b || (a.is_nan() && b.is_nan()) {
                continue;
            }
            let d = (a - b).abs();
            abs = abs.max(d);
            rel = rel.max(d / a.abs().max(b.abs()).max(f64::MIN_POSITIVE));
        }
        let d = Difference {
            max_abs: abs,
            max_rel: Some(rel),
            differs: reference.data.len() != out.data.len(),
        };
        Ok(if self.router.checked(i, batch.len(), d) {
            out
        } else {
            reference
        })
    }

    /// Computes `batch` on the CPU reference.
    fn cpu(
        &mut self,
        features: &FeatureSet,
        window_ms: i64,
        batch: &WindowBatch,
    ) -> Result<FeatureBatch, ComputeError> {
        let started = Instant::now();
        let mut out = FeatureBatch::default();
        self.engines[0]
            .backend
            .features(features, window_ms, batch, &mut out)?;
        let secs = started.elapsed().as_secs_f64();
        self.router
            .computed(0, batch.len(), batch.values.len() as f64, secs);
        Ok(out)
    }
}

/// The scheduler used synchronously: one batch in, its features out.
impl ComputeBackend for Hybrid {
    fn name(&self) -> &str {
        "auto"
    }

    fn report(&self) -> Vec<EngineReport> {
        self.engine_reports()
    }

    fn features(
        &mut self,
        features: &FeatureSet,
        window_ms: i64,
        batch: &WindowBatch,
        out: &mut FeatureBatch,
    ) -> Result<(), ComputeError> {
        let ticket = self.submit(features, window_ms, batch.clone());
        let mut others = Vec::new();
        let mine = loop {
            let done = self.poll(features, window_ms, true);
            if done.is_empty() {
                break None;
            }
            let mut found = None;
            for c in done {
                if c.ticket == ticket {
                    found = Some(c);
                } else {
                    others.push(c);
                }
            }
            if found.is_some() {
                break found;
            }
        };
        self.done.extend(others);
        let mine = mine.ok_or_else(|| ComputeError::Device("a batch was lost".into()))?;
        *out = mine.result?;
        Ok(())
    }
}
