//! The live Kafka source operator. Each worker reads the partitions the plan deals it, with a
//! decoder (and so a watermark) per partition. Messages are decoded in offset order; a batch
//! is emitted at its partition's watermark before it, as the file source does, so a partition
//! read live gives the same late/on-time decisions as a replay of the same messages. The
//! operator's capability is the least watermark over its partitions that are neither done
//! nor idle (no message for `idle-timeout`); when all are idle it follows the most advanced,
//! and a partition that wakes up again is raised to that time first (older readings are late).

use super::checkpoint::{Cut, PartReport};
use super::source_driver::{Backpressure, Emitted, Next, Pull, drive};
use super::{Failure, Shared};
use crate::batch::{ReadingBatch, RejectKind, RejectRow};
use crate::checkpoint::SourceCut;
use crate::config::KafkaSource;
use crate::events::{DeadLettered, Event as _, OffsetsCommitted, PartitionProgress, RowsDecoded};
use crate::output::OutRecord;
use crate::plan::Plan;
use crate::stages::sink::kafka::Producer;
use crate::stages::source::Decoder;
use crate::stages::source::kafka::{KafkaPlan, assigned_consumer};
use crate::stages::source::message::{Message, MessageDecoder};
use rdkafka::Message as _;
use rdkafka::consumer::BaseConsumer;
use std::sync::Arc;
use std::time::{Duration, Instant};
use timely::dataflow::{ProbeHandle, Scope, StreamVec};

/// Messages taken per activation at most (then the operator yields to the others).
const POLL_BUDGET: usize = 20_000;

struct Part {
    topic: String,
    partition: i32,
    name: String,
    decoder: Decoder,
    /// Next offset to read.
    position: i64,
    end: Option<i64>,
    last_message: Instant,
    buffered: Vec<Polled>,
    /// (latest time of any output row the messages before `offset` can cause, offset): once
    /// the outputs below that time are durable, `offset` may be committed.
    checkpoints: std::collections::VecDeque<(i64, i64)>,
    /// Offset safe to commit, and the offset last committed.
    safe: i64,
    committed: i64,
    /// When the broker was last asked whether this silent partition has data.
    asked: Option<Instant>,
    /// A stopping run: the broker had nothing more for this partition when last asked (and
    /// nothing came since).
    caught_up: bool,
}

/// A message as polled: offset, timestamp, payload.
type Polled = (i64, Option<i64>, Option<Vec<u8>>);

/// Buffered messages as the message decoder takes them.
fn messages(buffered: &[Polled]) -> Vec<Message<'_>> {
    buffered
        .iter()
        .map(|(o, ts, pl)| Message {
            offset: *o,
            timestamp: *ts,
            payload: pl.as_deref(),
        })
        .collect()
}

impl Part {
    /// Its position in a checkpoint: the next offset, and what its watermark has seen.
    fn position(&self) -> SourceCut {
        SourceCut::Kafka {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: self.position,
            seen: self.decoder.watermark.seen(),
        }
    }
    fn done(&self) -> bool {
        self.end.is_some_and(|e| self.position >= e)
    }
    fn bound(&self) -> i64 {
        self.decoder.watermark.get()
    }
}

/// This worker's share of the plan's partitions, with its consumer and dead-letter producer.
struct KafkaReader {
    pipeline: Arc<Plan>,
    plan: Arc<KafkaPlan>,
    shared: Arc<Shared>,
    parts: Vec<Part>,
    consumer: Option<BaseConsumer>,
    messages: MessageDecoder,
    dead_letters: Option<String>,
    producer: Option<Producer>,
    pressure: Backpressure,
    delay: i64,
    idle: Duration,
    warned: Instant,
    commit_every: Duration,
    last_commit: Instant,
    last_progress: Instant,
    /// The least time it may still emit at; None once finished.
    low: Option<i64>,
    /// The process's partition wake-ups this reader has answered (see [`Self::capability`]).
    wakes: u64,
}

/// Reads this worker's share of the plan's partitions: (readings, side rows).
#[allow(clippy::too_many_arguments)]
pub fn kafka_source<'s>(
    scope: Scope<'s, i64>,
    pipeline: Arc<Plan>,
    kafka: KafkaSource,
    plan: Arc<KafkaPlan>,
    progress: ProbeHandle<i64>,
    done: ProbeHandle<i64>,
    shared: Arc<Shared>,
    resume: Option<Arc<crate::checkpoint::Checkpoint>>,
) -> (
    StreamVec<'s, i64, ReadingBatch>,
    StreamVec<'s, i64, OutRecord>,
) {
    let peers = scope.peers();
    let index = scope.index();
    drive(scope, "kafka-source", shared.clone(), move || {
        let src = &pipeline.source;
        let delay = pipeline.watermark_delay;
        let pressure = Backpressure::new(progress.clone(), done.clone(), pipeline.lead);
        let idle = Duration::from_millis(kafka.idle_timeout.ms.max(1) as u64);
        let mine: Vec<usize> = (0..plan.parts.len())
            .filter(|i| i % peers == index)
            .collect();
        let messages = MessageDecoder::new(
            kafka.format,
            src.columns.clone(),
            kafka.csv_fields.clone(),
            src.time_unit,
            pipeline.zone.clone(),
        )
        .with_time_range(pipeline.time_range.0, pipeline.time_range.1);
        let parts: Vec<Part> = mine
            .iter()
            .map(|&i| {
                let (topic, partition) = plan.parts[i].clone();
                // Resuming: the watermark as it was at the checkpoint's cut (the plan's start
                // is already the cut's offset).
                let seen = resume.as_ref().and_then(|r| {
                    r.sources.iter().find_map(|c| match c {
                        SourceCut::Kafka {
                            topic: t,
                            partition: p,
                            seen,
                            ..
                        } if *t == topic && *p == partition => *seen,
                        _ => None,
                    })
                });
                Part {
                    name: format!("{topic}/{partition}"),
                    topic,
                    partition,
                    decoder: Decoder::new(pipeline.clone(), peers, seen),
                    position: plan.starts[i],
                    end: plan.ends.as_ref().map(|e| e[i]),
                    last_message: Instant::now(),
                    buffered: Vec::new(),
                    checkpoints: Default::default(),
                    safe: plan.starts[i],
                    committed: plan.starts[i],
                    asked: None,
                    caught_up: false,
                }
            })
            .collect();
        let consumer: Option<BaseConsumer> = if parts.iter().all(Part::done) {
            None
        } else {
            match assigned_consumer(&kafka, &plan, &mine) {
                Ok(c) => Some(c),
                Err(e) => {
                    shared.fail(Failure::Kafka(e.to_string()));
                    None
                }
            }
        };
        let dead_letters = kafka.dead_letter_topic.clone();
        let producer = dead_letters.as_ref().and_then(|_| {
            Producer::new(kafka.brokers.get_ref(), &kafka.properties)
                .map_err(|e| shared.fail(Failure::Kafka(e)))
                .ok()
        });
        KafkaReader {
            pipeline: pipeline.clone(),
            plan: plan.clone(),
            shared: shared.clone(),
            parts,
            consumer,
            messages,
            dead_letters,
            producer,
            pressure,
            delay,
            idle,
            warned: Instant::now() - Duration::from_secs(60),
            commit_every: Duration::from_millis(kafka.commit_interval.ms.max(1) as u64),
            last_commit: Instant::now(),
            last_progress: Instant::now() - Duration::from_secs(1),
            // A resumed run emits nothing below the cut.
            low: Some(resume.as_ref().map_or(i64::MIN, |r| r.at)),
            wakes: 0,
        }
    })
}

impl Pull for KafkaReader {
    fn bound(&self) -> Option<i64> {
        self.low
    }

    fn pull(&mut self, floor: i64, cut: Option<Cut>, out: &mut Emitted) -> Result<Next, Failure> {
        // Stopping with checkpoints: read on until the last checkpoint is taken.
        if self.shared.stop_now() || self.parts.iter().all(Part::done) || self.consumer.is_none() {
            self.finish();
            // Where each partition ended, for every later checkpoint (this reader is not
            // pulled again).
            for k in 0..self.parts.len() {
                out.finished
                    .push((self.index_of(k), self.parts[k].position()));
            }
            return Ok(Next::Now);
        }
        // Backpressure: as the file source, stop fetching while far ahead of the sinks.
        if self.pressure.should_wait(floor) {
            return Ok(Next::After(Duration::from_millis(2)));
        }
        let got = self.poll();
        let now = Instant::now();
        for k in 0..self.parts.len() {
            if !self.parts[k].buffered.is_empty() {
                self.decode_cut(k, floor, now, cut, out);
            } else if let Some((_, at)) = cut {
                // A partition with nothing new: where it stands (all it emitted is below
                // the cut unless its next batch goes at or above it).
                let p = &self.parts[k];
                out.reports.push(PartReport {
                    index: self.index_of(k),
                    cut: p.position(),
                    crossed: p.bound().max(floor) >= at,
                });
            }
        }
        self.commit();
        self.progress();
        self.low = Some(self.capability(now, cut));
        Ok(if got == 0 {
            Next::After(Duration::from_millis(5))
        } else {
            Next::Now
        })
    }
}

impl KafkaReader {
    /// Records the positions reached and flushes the dead letters; the reader is done.
    fn finish(&mut self) {
        self.shared.record_positions(
            self.parts
                .iter()
                .map(|p| (p.topic.clone(), p.partition, p.position)),
        );
        if let Some(p) = &self.producer
            && let Err(e) = p.flush(Duration::from_secs(60))
        {
            self.shared
                .fail(Failure::Kafka(format!("dead-letter topic: {e}")));
        }
        self.low = None;
    }

    /// Takes the messages the consumer has ready (within a budget) into the partitions'
    /// buffers; returns how many.
    fn poll(&mut self) -> usize {
        let Some(consumer) = self.consumer.as_ref() else {
            return 0;
        };
        let started = Instant::now();
        let mut got = 0;
        while got < POLL_BUDGET && started.elapsed() < Duration::from_millis(20) {
            match consumer.poll(Duration::ZERO) {
                None => break,
                Some(Ok(m)) => {
                    got += 1;
                    let (topic, partition) = (m.topic(), m.partition());
                    let found = self
                        .parts
                        .iter()
                        .position(|p| p.partition == partition && p.topic == topic);
                    if let Some(k) = found {
                        let p = &mut self.parts[k];
                        if p.end.is_some_and(|e| m.offset() >= e) {
                            continue; // beyond the end of a bounded run
                        }
                        if p.buffered.is_empty()
                            && started.duration_since(p.last_message) >= self.idle
                        {
                            self.shared.note_wake();
                        }
                        p.caught_up = false;
                        p.buffered.push((
                            m.offset(),
                            m.timestamp().to_millis(),
                            m.payload().map(<[u8]>::to_vec),
                        ));
                    }
                }
                Some(Err(e)) => {
                    // librdkafka reconnects by itself; say so now and then.
                    if self.warned.elapsed() > Duration::from_secs(10) {
                        tracing::warn!("kafka: {e} (retrying)");
                        self.warned = Instant::now();
                    }
                    break;
                }
            }
        }
        got
    }

    /// The partition's index in the run's order.
    fn index_of(&self, k: usize) -> usize {
        let p = &self.parts[k];
        self.plan
            .parts
            .iter()
            .position(|(t, n)| *t == p.topic && *n == p.partition)
            .unwrap_or(usize::MAX)
    }

    /// [`Self::decode`], with a checkpoint's `cut`: the messages are split where the
    /// partition's watermark reaches the cut (the ones before emitted below it, the rest at it
    /// or later), and the partition's position reported.
    fn decode_cut(
        &mut self,
        k: usize,
        floor: i64,
        now: Instant,
        cut: Option<Cut>,
        out: &mut Emitted,
    ) {
        let Some((_, at)) = cut else {
            self.decode(k, floor, now, out);
            return;
        };
        let index = self.index_of(k);
        let p = &mut self.parts[k];
        p.decoder.watermark.raise_to(floor);
        let split = if p.bound().max(floor) >= at {
            Some(0)
        } else {
            // Where the readings take the watermark to the cut, as a message index.
            let msgs = messages(&p.buffered);
            let decoded = self.messages.decode(&msgs);
            p.decoder.crossing(&decoded.batch, at).map(|row| {
                let offset = decoded.offsets[row];
                p.buffered
                    .iter()
                    .position(|m| m.0 as u64 == offset)
                    .unwrap_or(0)
            })
        };
        match split {
            None => {
                self.decode(k, floor, now, out);
                let p = &self.parts[k];
                out.reports.push(PartReport {
                    index,
                    cut: p.position(),
                    crossed: false,
                });
            }
            Some(j) => {
                let rest = self.parts[k].buffered.split_off(j);
                if !self.parts[k].buffered.is_empty() {
                    self.decode(k, floor, now, out);
                }
                let p = &mut self.parts[k];
                out.reports.push(PartReport {
                    index,
                    cut: p.position(),
                    crossed: true,
                });
                p.buffered = rest;
                if !p.buffered.is_empty() {
                    self.decode(k, floor.max(at), now, out);
                }
            }
        }
    }

    /// Decodes partition `k`'s buffered messages into `out`: undecodable ones to the rejects
    /// (and the dead-letter topic), the rest through the partition's decoder.
    fn decode(&mut self, k: usize, floor: i64, now: Instant, out: &mut Emitted) {
        let p = &mut self.parts[k];
        // A partition behind the operator's time (it was idle) rejoins at that time.
        p.decoder.watermark.raise_to(floor);
        let batch = std::mem::take(&mut p.buffered);
        let msgs = messages(&batch);
        let decoded = self.messages.decode(&msgs);
        let at = p.bound().max(floor);
        for (offset, reason) in &decoded.errors {
            let row = RejectRow {
                source: p.name.clone(),
                row: Some(*offset as u64),
                sensor: None,
                time: None,
                value: None,
                reason: format!("undecodable message: {reason}"),
                kind: RejectKind::Undecodable,
            };
            let rejected = (at, row);
            RowsDecoded {
                partition: &p.name,
                rows: 1,
                accepted: 0,
                rejects: std::slice::from_ref(&rejected),
                late: 0,
                dropped: 0,
            }
            .emit();
            out.side.push((at, OutRecord::Reject(rejected.1)));
            if let (Some(prod), Some(topic)) = (&self.producer, &self.dead_letters) {
                // A null payload stays null (not an empty one).
                let payload = batch
                    .iter()
                    .find(|m| m.0 == *offset)
                    .and_then(|m| m.2.as_deref());
                let (o, part) = (offset.to_string(), p.partition.to_string());
                let headers = [
                    ("hyflow-error", reason.as_str()),
                    ("hyflow-topic", p.topic.as_str()),
                    ("hyflow-partition", part.as_str()),
                    ("hyflow-offset", o.as_str()),
                ];
                if let Err(e) = prod.send(topic, None, payload, &headers) {
                    self.shared
                        .fail(Failure::Kafka(format!("dead-letter topic {topic}: {e}")));
                } else {
                    DeadLettered {
                        topic,
                        from: &p.name,
                        offset: *offset,
                        reason,
                    }
                    .emit();
                }
            }
        }
        let offsets = decoded.offsets;
        let d = p
            .decoder
            .decode_rows(&p.name, |i| offsets[i], &decoded.batch, floor);
        let rows = decoded.batch.num_rows() as u64;
        out.decoded(&p.name, rows, d, at, floor);
        if let Some(last) = batch.last() {
            p.position = last.0 + 1;
        }
        p.last_message = now;
        // Every row these messages can cause has a time at most the end of the last window of
        // the latest event time seen (rejects and late rows: the watermark).
        let seen = p.bound().saturating_add(self.delay);
        p.checkpoints
            .push_back((self.pipeline.window.last_end(seen).max(at), p.position));
    }

    /// Commits the offsets whose outputs are durable, every commit interval.
    fn commit(&mut self) {
        let Some(consumer) = self.consumer.as_ref() else {
            return;
        };
        if self.last_commit.elapsed() < self.commit_every {
            return;
        }
        self.last_commit = Instant::now();
        let durable = self.shared.durable();
        // With checkpoints, the offsets committed are those of the last checkpoint written:
        // never ahead of the state saved with them.
        let saved = self
            .shared
            .checkpoints
            .as_ref()
            .map(|c| c.last_positions().1);
        let mut tpl = rdkafka::TopicPartitionList::new();
        for p in self.parts.iter_mut() {
            if let Some(saved) = &saved {
                for c in saved {
                    if let SourceCut::Kafka {
                        topic,
                        partition,
                        offset,
                        ..
                    } = c
                        && *topic == p.topic
                        && *partition == p.partition
                    {
                        p.safe = p.safe.max(*offset);
                    }
                }
                p.checkpoints.clear();
            }
            while let Some(&(t, o)) = p.checkpoints.front() {
                if t >= durable {
                    break;
                }
                p.safe = o;
                p.checkpoints.pop_front();
            }
            if p.safe > p.committed {
                let _ = tpl.add_partition_offset(
                    &p.topic,
                    p.partition,
                    rdkafka::Offset::Offset(p.safe),
                );
                p.committed = p.safe;
            }
        }
        if tpl.count() == 0 {
            return;
        }
        match rdkafka::consumer::Consumer::commit(
            consumer,
            &tpl,
            rdkafka::consumer::CommitMode::Async,
        ) {
            Err(e) => tracing::warn!("kafka: committing offsets: {e}"),
            Ok(()) => {
                for e in tpl.elements() {
                    if let rdkafka::Offset::Offset(o) = e.offset() {
                        OffsetsCommitted {
                            topic: e.topic(),
                            partition: e.partition(),
                            offset: o,
                        }
                        .emit();
                    }
                }
            }
        }
    }

    /// Each partition's watermark and lag, for /metrics, every second (the lag from the high
    /// watermark librdkafka last fetched: no round trip).
    fn progress(&mut self) {
        let Some(consumer) = self.consumer.as_ref() else {
            return;
        };
        if self.last_progress.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last_progress = Instant::now();
        for p in &self.parts {
            let w = p.bound();
            PartitionProgress {
                topic: &p.topic,
                partition: p.partition,
                watermark_ms: (w > i64::MIN / 2).then_some(w),
                lag: crate::stages::source::kafka::cached_high_watermark(
                    consumer,
                    &p.topic,
                    p.partition,
                )
                .map(|high| high - p.position),
            }
            .emit();
        }
    }

    /// The least bound over partitions still reading and not idle. (A bounded run has no
    /// idle partitions: it reads to the end offsets, like a replay.)
    fn capability(&mut self, now: Instant, cut: Option<Cut>) -> i64 {
        let bounded = self.plan.ends.is_some();
        let idle = self.idle;
        // When a silent partition of this process got messages again (a burst after a pause),
        // every silent partition is asked again before time moves on, not at its next turn:
        // their messages, produced with the burst but not fetched yet, would otherwise be
        // late against the watermark the first partition fetched takes. The process's
        // watermark is read first, so that any wake behind it is seen.
        let (most, wakes) = self.shared.live_bound_and_wakes();
        let woke = wakes != self.wakes;
        self.wakes = wakes;
        // A partition silent for the idle timeout is idle only if the broker has nothing more
        // for it either: one that is merely slow to fetch (at start-up, say) must not let the
        // others run ahead and make its readings late. Asked at most every 100 ms while it
        // stays silent (a local round trip).
        if !bounded && let Some(consumer) = self.consumer.as_ref() {
            for p in self.parts.iter_mut() {
                let silent = now.duration_since(p.last_message) >= idle;
                let ask = woke
                    || p.asked.is_none_or(|a| {
                        now.duration_since(a) >= idle.min(Duration::from_millis(100))
                    });
                if !p.done() && silent && ask {
                    p.asked = Some(now);
                    let pending = rdkafka::consumer::Consumer::fetch_watermarks(
                        consumer,
                        &p.topic,
                        p.partition,
                        Duration::from_millis(200),
                    )
                    .is_ok_and(|(_, high)| high > p.position);
                    if pending {
                        p.last_message = now;
                    }
                }
            }
        }
        // A run stopping at its last checkpoint: a partition the broker has nothing more for
        // counts as idle at once (not after the idle timeout), up to the cut, so that the cut
        // is taken; one with more to read reads on past the cut, as for any checkpoint.
        let stop_at = cut
            .filter(|_| {
                self.shared
                    .checkpoints
                    .as_ref()
                    .is_some_and(|c| c.stopping())
            })
            .map(|(_, at)| at);
        if let Some(consumer) = self.consumer.as_ref()
            && stop_at.is_some()
        {
            for p in self.parts.iter_mut() {
                let ask = p
                    .asked
                    .is_none_or(|a| now.duration_since(a) >= Duration::from_millis(100));
                if !p.done() && !p.caught_up && p.buffered.is_empty() && ask {
                    p.asked = Some(now);
                    p.caught_up = rdkafka::consumer::Consumer::fetch_watermarks(
                        consumer,
                        &p.topic,
                        p.partition,
                        Duration::from_millis(200),
                    )
                    .is_ok_and(|(_, high)| high <= p.position);
                }
            }
        }
        let bound = |p: &Part| match stop_at {
            Some(at) if p.caught_up => p.bound().max(at),
            _ => p.bound(),
        };
        let active = self
            .parts
            .iter()
            .filter(|p| !p.done() && (bounded || now.duration_since(p.last_message) < idle));
        let mine = self.parts.iter().map(Part::bound).max().unwrap_or(i64::MIN);
        self.shared.note_live_bound(mine);
        let most = most.max(mine);
        match active.map(bound).min() {
            Some(b) => b,
            // All idle: follow the most advanced partition of the process, so that a worker
            // whose partitions are silent does not hold everyone back (stopping: up to the
            // cut).
            None if self.parts.iter().any(|p| !p.done()) => most.max(stop_at.unwrap_or(i64::MIN)),
            None => i64::MAX,
        }
    }
}
