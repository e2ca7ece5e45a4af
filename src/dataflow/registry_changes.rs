//! Where the registry's collections come from: one operator, on worker 0, that turns registry
//! changes into differential updates (sensor rows, edges) through [`Current`], each update
//! carrying its own time.
//!
//! A replay applies every change of the plan (the files' rows, then the change log) when it
//! starts. A live run with `[registry] topic` applies the files' rows, then reads the topic
//! from its beginning: until it has reached where the topic ended when the run started (the
//! snapshot), the operator holds its capability at the start of time, so every window waits
//! for the registry as it stood then and each change counts from its effective time. After
//! that it follows the topic and holds its capability at the frontier of the windows (the
//! features stage's output): a change is applied at its effective time, or at that frontier
//! if its time has passed (it then counts from the windows not yet scored, never rewriting
//! one already written), and never before the key's previous change. Changes it applied are
//! appended to `[registry] record` with the time they took effect: the change log a replay
//! needs to equal the run. A message that cannot be read goes to the rejects output, and to
//! the source's `dead-letter-topic` when it has one (as an undecodable reading does).

use super::{Failure, OutputStep, Shared};
use crate::batch::{RejectKind, RejectRow};
use crate::config::KafkaSource;
use crate::events::{DeadLettered, Event as _, RegistryChangesRead};
use crate::output::OutRecord;
use crate::plan::RegistryPlan;
use crate::stages::registry::{Change, Current, EdgeInfo, Entry, Key, Update, Value, topic};
use crate::stages::sink::kafka::Producer;
use crate::stages::source::kafka::{RegistryTopic, registry_consumer};
use differential_dataflow::{AsCollection, VecCollection};
use rdkafka::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::Write;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::{Scope, StreamVec};

/// A sensor row's update: (sensor, (time it holds from, row)), time, diff.
type SensorUpdate = ((String, (i64, Entry)), i64, isize);
/// An edge's update.
type EdgeUpdate = (((String, String), EdgeInfo), i64, isize);

/// Changes applied per activation at most (then the operator yields to the others).
const BUDGET: usize = 65_536;

/// The registry's changes as collections, and the rows refused on the way.
pub struct Changes<'s> {
    /// Sensor rows with the time from which they hold.
    pub sensors: VecCollection<'s, i64, (String, (i64, Entry))>,
    /// Edges.
    pub edges: VecCollection<'s, i64, ((String, String), EdgeInfo)>,
    /// Registry messages that could not be read, and a failure: for the sinks.
    pub side: StreamVec<'s, i64, OutRecord>,
}

/// A live run's registry topic.
pub struct Live {
    /// The source's Kafka settings (brokers, properties).
    pub kafka: KafkaSource,
    /// The topic, its partitions and where they ended when the run started.
    pub topic: Arc<RegistryTopic>,
    /// The pipeline's name (the consumer's group).
    pub pipeline: String,
    /// A bounded run (`--until-end`): read the snapshot only.
    pub bounded: bool,
}

/// The frontier of the windows that wait for the registry, as the lookup on the same worker
/// last saw it (its input from the features stage), and the registry operator's activator, so
/// that the lookup wakes it when the windows move on.
pub struct WindowsFrontier {
    /// The least time a window may still arrive at; `None` once every window has arrived.
    low: Cell<Option<i64>>,
    wake: RefCell<Option<timely::scheduling::Activator>>,
}

impl WindowsFrontier {
    /// At the start: windows may arrive at any time.
    pub fn new() -> Rc<Self> {
        Rc::new(Self {
            low: Cell::new(Some(i64::MIN)),
            wake: RefCell::new(None),
        })
    }
    /// The lookup saw its windows' frontier at `low`: wakes the registry operator if it moved.
    pub fn set(&self, low: Option<i64>) {
        if self.low.replace(low) != low
            && let Some(a) = self.wake.borrow().as_ref()
        {
            a.activate();
        }
    }
    fn get(&self) -> Option<i64> {
        self.low.get()
    }
}

/// The registry's changes: `plan`'s (a replay), or the files' rows then `live`'s topic.
/// `windows` is the frontier of the windows that wait for the registry.
pub fn changes<'s>(
    scope: Scope<'s, i64>,
    plan: Arc<RegistryPlan>,
    windows: Rc<WindowsFrontier>,
    live: Option<Live>,
    shared: Arc<Shared>,
) -> Changes<'s> {
    let mut builder = OperatorBuilder::new("registry changes".to_string(), scope);
    let info = builder.operator_info();
    let (s_out, sensors) = builder.new_output();
    let (e_out, edges) = builder.new_output();
    let (side_out, side) = builder.new_output();
    let mut s_out = OutputBuilder::<_, CapacityContainerBuilder<Vec<SensorUpdate>>>::from(s_out);
    let mut e_out = OutputBuilder::<_, CapacityContainerBuilder<Vec<EdgeUpdate>>>::from(e_out);
    let mut side_out = OutputBuilder::<_, CapacityContainerBuilder<Vec<OutRecord>>>::from(side_out);
    let first = scope.index() == 0;
    builder.build(move |caps| {
        let act = scope.activator_for(info.address.clone());
        *windows.wake.borrow_mut() = Some(scope.activator_for(info.address));
        // Worker 0 reads every change; the others hold nothing.
        let mut caps = first.then_some(caps);
        let mut reader = Reader {
            live: live.map(|l| LiveReader::new(l, &plan)),
            plan,
            windows,
            loaded: 0,
            current: Current::default(),
            buf: Vec::new(),
        };
        move |_frontiers| {
            let Some(cs) = caps.as_mut() else { return };
            if shared.aborted() {
                caps = None;
                return;
            }
            let floor = *cs[0].time();
            let mut out = Out::default();
            let next = reader.step(floor, &mut out);
            if let Err(e) = &next {
                // Tell worker 0's sinks (the run's result) before stopping.
                out.side.push(OutRecord::Failure(e.clone()));
            }
            if !out.sensors.is_empty() {
                s_out
                    .activate()
                    .session(&cs[0])
                    .give_container(&mut out.sensors);
            }
            if !out.edges.is_empty() {
                e_out
                    .activate()
                    .session(&cs[1])
                    .give_container(&mut out.edges);
            }
            if !out.side.is_empty() {
                side_out
                    .activate()
                    .session(&cs[2])
                    .give_container(&mut out.side);
            }
            match next {
                Ok(Some((t, after))) => {
                    for c in cs.iter_mut() {
                        if t > *c.time() {
                            c.downgrade(&t);
                        }
                    }
                    match after {
                        None => act.activate(),
                        Some(d) => act.activate_after(d),
                    }
                }
                Ok(None) => caps = None,
                Err(e) => {
                    shared.fail(e);
                    caps = None;
                }
            }
        }
    });
    Changes {
        sensors: sensors.as_collection(),
        edges: edges.as_collection(),
        side,
    }
}

/// What one activation emits.
#[derive(Default)]
struct Out {
    sensors: Vec<SensorUpdate>,
    edges: Vec<EdgeUpdate>,
    side: Vec<OutRecord>,
}

impl Out {
    fn route(&mut self, updates: &mut Vec<Update>) {
        for ((k, (from, v)), t, d) in updates.drain(..) {
            match (k, v) {
                (Key::Sensor(s), Value::Sensor(e)) => self.sensors.push(((s, (from, e)), t, d)),
                (Key::Edge(a, b), Value::Edge(e)) => self.edges.push((((a, b), e), t, d)),
                _ => {}
            }
        }
    }
}

/// Worker 0's state.
struct Reader {
    plan: Arc<RegistryPlan>,
    windows: Rc<WindowsFrontier>,
    /// Changes of the plan applied so far.
    loaded: usize,
    current: Current,
    buf: Vec<Update>,
    live: Option<LiveReader>,
}

impl Reader {
    /// Applies what is ready. `Some((t, after))`: hold the capabilities at `t` (at least) and
    /// run again after `after` (`None`: at once); `None`: done.
    fn step(
        &mut self,
        floor: i64,
        out: &mut Out,
    ) -> Result<Option<(i64, Option<Duration>)>, Failure> {
        // A replay applies the whole change log at once (each update at its own time); a live
        // run the files' rows, then the topic. (Applying the log as the windows reach it
        // halved the arrangement's memory on the registry benchmark but cost 40 % more time:
        // docs/performance.md.)
        let start = self.plan.at_start(self.live.is_some());
        if self.loaded < start.len() {
            let end = (self.loaded + BUDGET).min(start.len());
            for ch in &start[self.loaded..end] {
                self.current.apply(ch.clone(), &mut self.buf);
                out.route(&mut self.buf);
            }
            self.loaded = end;
            return Ok(Some((floor, None)));
        }
        let windows = self.windows.get();
        let Some(live) = self.live.as_mut() else {
            return Ok(None);
        };
        let full = live.poll(floor, &self.plan, &mut self.current, &mut self.buf, out)?;
        let after = (!full).then_some(Duration::from_millis(5));
        if !live.snapshot_read() {
            return Ok(Some((floor, after)));
        }
        if live.bounded {
            return Ok(None);
        }
        // Follow the windows; once they are all done, so is the registry.
        Ok(windows.map(|t| (t.max(floor), after)))
    }
}

/// The registry topic, read on worker 0.
struct LiveReader {
    kafka: KafkaSource,
    topic: Arc<RegistryTopic>,
    pipeline: String,
    bounded: bool,
    consumer: Option<BaseConsumer>,
    /// Next offset per partition (in `topic.partitions` order).
    next: Vec<i64>,
    /// The time of each key's last change: a later message never counts from before it.
    last: HashMap<Key, i64>,
    record: Option<(String, std::io::BufWriter<std::fs::File>)>,
    record_path: Option<std::path::PathBuf>,
    /// The source's dead-letter topic and its producer (opened with the consumer).
    dead: Option<(String, Producer)>,
}

impl LiveReader {
    fn new(l: Live, plan: &RegistryPlan) -> Self {
        Self {
            next: vec![0; l.topic.partitions.len()],
            kafka: l.kafka,
            topic: l.topic,
            pipeline: l.pipeline,
            bounded: l.bounded,
            consumer: None,
            last: HashMap::new(),
            record: None,
            record_path: plan.record.clone(),
            dead: None,
        }
    }

    /// True once every partition has been read to where it ended when the run started.
    fn snapshot_read(&self) -> bool {
        self.next.iter().zip(&self.topic.ends).all(|(n, e)| n >= e)
    }

    /// Opens the consumer and the record file on first use.
    fn open(&mut self) -> Result<(), Failure> {
        if self.consumer.is_none() {
            let c = registry_consumer(&self.kafka, &self.topic, &self.pipeline)
                .map_err(|e| Failure::Kafka(e.to_string()))?;
            self.consumer = Some(c);
            if let Some(topic) = &self.kafka.dead_letter_topic {
                let p = Producer::new(self.kafka.brokers.get_ref(), &self.kafka.properties)
                    .map_err(Failure::Kafka)?;
                self.dead = Some((topic.clone(), p));
            }
        }
        if let (None, Some(path)) = (&self.record, &self.record_path) {
            let fail = |e: std::io::Error| Failure::Output {
                step: OutputStep::Write,
                message: format!("[registry] record {}: {e}", path.display()),
            };
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(fail)?;
            }
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(fail)?;
            self.record = Some((path.display().to_string(), std::io::BufWriter::new(f)));
        }
        Ok(())
    }

    /// Reads and applies what the topic has (up to a budget): true when the budget ran out.
    fn poll(
        &mut self,
        floor: i64,
        plan: &RegistryPlan,
        current: &mut Current,
        buf: &mut Vec<Update>,
        out: &mut Out,
    ) -> Result<bool, Failure> {
        self.open()?;
        let consumer = self.consumer.as_ref().expect("opened");
        let (mut applied, mut late, mut rejected) = (0u64, 0u64, 0u64);
        let mut n = 0;
        while n < BUDGET {
            let Some(m) = consumer.poll(Duration::ZERO) else {
                break;
            };
            n += 1;
            let m = match m {
                Ok(m) => m,
                Err(e) => {
                    // The consumer retries by itself (a broker that is down comes back).
                    tracing::warn!("registry topic {}: {e}", self.topic.topic);
                    break;
                }
            };
            if let Some(i) = self
                .topic
                .partitions
                .iter()
                .position(|p| *p == m.partition())
            {
                self.next[i] = self.next[i].max(m.offset() + 1);
            }
            let effective = m.headers().and_then(|h| {
                h.iter()
                    .find(|h| h.key == topic::EFFECTIVE_TIME)
                    .and_then(|h| h.value)
            });
            match topic::decode(m.key(), m.payload(), effective, &plan.schema) {
                Ok((key, value, time)) => {
                    let mut t = time.unwrap_or(floor).max(floor);
                    if time.is_some_and(|x| x < floor) {
                        late += 1;
                    }
                    if let Some(prev) = self.last.get(&key) {
                        t = t.max(*prev);
                    }
                    self.last.insert(key.clone(), t);
                    let change = Change {
                        time: t,
                        key,
                        value,
                    };
                    if let Some((path, w)) = self.record.as_mut() {
                        writeln!(w, "{}", topic::to_line(&change, &plan.schema)).map_err(|e| {
                            Failure::Output {
                                step: OutputStep::Write,
                                message: format!("[registry] record {path}: {e}"),
                            }
                        })?;
                    }
                    current.apply(change, buf);
                    out.route(buf);
                    applied += 1;
                }
                Err(reason) => {
                    rejected += 1;
                    let at = format!("{}/{}", self.topic.topic, m.partition());
                    tracing::warn!("registry topic {at} offset {}: {reason}", m.offset());
                    if let Some((dlq, p)) = &self.dead {
                        dead_letter(p, dlq, &m, &at, &reason)?;
                    }
                    out.side.push(OutRecord::Reject(RejectRow {
                        source: format!("registry topic {at}"),
                        row: u64::try_from(m.offset()).ok(),
                        sensor: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                        time: None,
                        value: None,
                        reason,
                        kind: RejectKind::RegistryChange,
                    }));
                }
            }
        }
        // Positions past what was delivered (a compacted topic's gaps, transaction markers).
        if let Ok(tpl) = consumer.position() {
            for (i, p) in self.topic.partitions.iter().enumerate() {
                if let Some(rdkafka::Offset::Offset(o)) = tpl
                    .find_partition(&self.topic.topic, *p)
                    .map(|e| e.offset())
                {
                    self.next[i] = self.next[i].max(o);
                }
            }
        }
        if let (Some((dlq, p)), true) = (&self.dead, rejected > 0) {
            // Rare: wait for the broker, so that a dead letter is not lost with a crash.
            p.flush(Duration::from_secs(60))
                .map_err(|e| Failure::Kafka(format!("dead-letter topic {dlq}: {e}")))?;
        }
        if let Some((path, w)) = self.record.as_mut()
            && applied > 0
        {
            w.flush().map_err(|e| Failure::Output {
                step: OutputStep::Write,
                message: format!("[registry] record {path}: {e}"),
            })?;
        }
        if applied + rejected > 0 {
            RegistryChangesRead {
                applied,
                late,
                rejected,
            }
            .emit();
        }
        Ok(n >= BUDGET)
    }
}

/// Copies registry message `m` (of partition `at`, refused for `reason`) to the dead-letter
/// topic `dlq`, key and value as they were, with the error and where it came from in headers.
fn dead_letter(
    p: &Producer,
    dlq: &str,
    m: &rdkafka::message::BorrowedMessage<'_>,
    at: &str,
    reason: &str,
) -> Result<(), Failure> {
    let key = m.key().map(String::from_utf8_lossy);
    let (o, part) = (m.offset().to_string(), m.partition().to_string());
    let headers = [
        ("hyflow-error", reason),
        ("hyflow-topic", m.topic()),
        ("hyflow-partition", part.as_str()),
        ("hyflow-offset", o.as_str()),
    ];
    p.send(dlq, key.as_deref(), m.payload(), &headers)
        .map_err(|e| Failure::Kafka(format!("dead-letter topic {dlq}: {e}")))?;
    DeadLettered {
        topic: dlq,
        from: &format!("registry topic {at}"),
        offset: m.offset(),
        reason,
    }
    .emit();
    Ok(())
}
