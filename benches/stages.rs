//! Per-stage benchmarks (criterion): source decode+clean, windowing, feature extraction.
//! `cargo bench --bench stages`; end-to-end numbers come from `hyflow bench`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hyflow::compute::{ComputeBackend, FeatureBatch, WindowBatch, cpu::CpuBackend};
use hyflow::plan;
use hyflow::stages::source::{Decoder, Partition, parquet::ParquetFile};
use hyflow::stages::window::WindowState;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

fn pipeline(name: &str) -> Arc<plan::Plan> {
    Arc::new(plan::load(Path::new(&format!("pipelines/{name}.toml"))).expect("valid pipeline"))
}

fn window_batch(windows: usize, per: usize) -> WindowBatch {
    let mut b = WindowBatch::default();
    let mut x = 1u64;
    for w in 0..windows {
        b.push_window(w as u32, Arc::from(format!("s{w}")), 0, 10_000);
        for i in 0..per {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            b.times.push((i * 10_000 / per) as i64);
            b.values.push((x >> 11) as f64 / (1u64 << 53) as f64);
        }
        b.finish_window(0);
    }
    b
}

/// The partitions of fixtures/bench.parquet (one row group) as one reader.
fn read_fixture(p: &plan::Plan) -> hyflow::stages::source::parquet::ParquetPartition {
    let src = &p.config.source;
    let file = ParquetFile::open(
        Path::new("fixtures/bench.parquet"),
        &src.columns,
        src.time_unit,
        &p.zone,
        p.time_range,
    )
    .expect("fixture");
    Arc::new(file)
        .partitions(src.batch_rows, false)
        .into_iter()
        .next()
        .expect("a partition")
}

fn features(c: &mut Criterion) {
    let batch = window_batch(1000, 100);
    let mut g = c.benchmark_group("features");
    g.throughput(Throughput::Elements(batch.values.len() as u64));
    for name in ["bench", "manufacturing"] {
        let p = pipeline(name);
        let mut out = FeatureBatch::default();
        g.bench_function(
            format!("{name} ({} features), 1000 windows x 100", p.features.len()),
            |b| b.iter(|| CpuBackend.features(&p.features, 10_000, black_box(&batch), &mut out)),
        );
    }
    g.finish();
}

fn source_and_window(c: &mut Criterion) {
    let p = pipeline("bench");
    let mut part = read_fixture(&p);
    let mut batches = Vec::new();
    while let Some(b) = part.next_batch() {
        batches.push(b.expect("read"));
    }
    let rows: usize = batches.iter().map(|b| b.1.num_rows()).sum();
    let mut g = c.benchmark_group("stages");
    g.throughput(Throughput::Elements(rows as u64));
    g.bench_function("parquet read (fixtures/bench.parquet)", |b| {
        b.iter(|| {
            let mut part = read_fixture(&p);
            while let Some(x) = part.next_batch() {
                black_box(x.expect("read"));
            }
        })
    });
    g.bench_function("decode + clean + route", |b| {
        b.iter(|| {
            let mut d = Decoder::new(p.clone(), 2, None);
            for (first, rb) in &batches {
                black_box(d.decode("bench", *first, rb, i64::MIN));
            }
        })
    });
    let mut d = Decoder::new(p.clone(), 1, None);
    let decoded: Vec<_> = batches
        .iter()
        .flat_map(|(f, rb)| d.decode("bench", *f, rb, i64::MIN).batches)
        .collect();
    g.bench_function("window insert + close", |b| {
        b.iter(|| {
            let mut w = WindowState::new(p.window, p.fill, p.config.clean.dedup);
            for r in &decoded {
                w.insert(r);
            }
            black_box(w.close(i64::MAX, &mut Vec::new()));
        })
    });
    g.finish();
}

fn messages(c: &mut Criterion) {
    use hyflow::config::{ColumnMapping, MessageFormat, TimeUnit};
    use hyflow::stages::source::message::{Message, MessageDecoder};
    let n = 10_000;
    let json: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            format!(
                r#"{{"sensor_id":"m{:04}-temp","ts":{},"value":{}}}"#,
                i % 1000,
                1_700_000_000_000i64 + i as i64 * 100,
                20.0 + (i % 17) as f64 * 0.25
            )
            .into_bytes()
        })
        .collect();
    let msgs: Vec<Message<'_>> = json
        .iter()
        .enumerate()
        .map(|(i, p)| Message {
            offset: i as i64,
            timestamp: None,
            payload: Some(p),
        })
        .collect();
    let dec = MessageDecoder::new(
        MessageFormat::Json,
        ColumnMapping::default(),
        None,
        TimeUnit::Ms,
        hyflow::timefmt::Zone::UTC,
    );
    let mut g = c.benchmark_group("messages");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("decode JSON (a reading per message)", |b| {
        b.iter(|| dec.decode(&msgs).batch.num_rows())
    });
    g.finish();
}

/// What one event costs with a run's recorder installed (the events are per batch, never per
/// row: docs/observability.md multiplies this by the events of a benchmark run).
fn events(c: &mut Criterion) {
    use hyflow::events::{BatchComputed, Event, Recorder, RowsDecoded, Stage};
    let recorder = Recorder::default();
    let _g = recorder.install();
    let mut g = c.benchmark_group("events");
    g.bench_function("rows decoded (4 counters)", |b| {
        b.iter(|| {
            RowsDecoded {
                partition: "readings.parquet",
                rows: 8192,
                accepted: 8190,
                rejects: &[],
                late: 1,
                dropped: 1,
            }
            .emit()
        })
    });
    g.bench_function("batch computed (histogram + counter, engine label)", |b| {
        b.iter(|| {
            BatchComputed {
                stage: Stage::Features,
                engine: "cpu",
                windows: 1000,
                seconds: 0.001,
            }
            .emit()
        })
    });
    g.finish();
}

criterion_group!(benches, features, source_and_window, messages, events);
criterion_main!(benches);
