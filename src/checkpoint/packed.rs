//! The compact form of an open window's buffered readings in a checkpoint (format 5): most of
//! a large checkpoint is these readings (`SeriesSnapshot::pending`: time, value, watermark
//! when read; 24 bytes each in plain bincode). Packed, each reading is its time as the
//! zigzag varint of the difference from the previous reading's time (a reading or two apart
//! at the sensor's rate: one or two bytes), its value's 8 bytes as they are (bit for bit:
//! NaN payloads, -0.0), and its watermark as the zigzag varint of the difference from the
//! previous watermark (0 when unchanged: one byte). The first reading's differences are from
//! 0. Serialised as one byte string, so bincode copies it in one piece.

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

/// A buffered reading: time, value, watermark when read.
pub type Reading = (i64, f64, i64);

/// Packs `readings` into `out` (appended).
pub fn pack(readings: &[Reading], out: &mut Vec<u8>) {
    let (mut t0, mut w0) = (0i64, 0i64);
    for &(t, v, w) in readings {
        varint(out, zigzag(t.wrapping_sub(t0)));
        out.extend_from_slice(&v.to_bits().to_le_bytes());
        varint(out, zigzag(w.wrapping_sub(w0)));
        (t0, w0) = (t, w);
    }
}

/// Unpacks what [`pack`] wrote; None when the bytes are not a whole packed sequence.
pub fn unpack(mut bytes: &[u8]) -> Option<Vec<Reading>> {
    let mut out = Vec::with_capacity(bytes.len() / 10);
    let (mut t, mut w) = (0i64, 0i64);
    while !bytes.is_empty() {
        t = t.wrapping_add(unzigzag(read_varint(&mut bytes)?));
        let (v, rest) = bytes.split_first_chunk::<8>()?;
        bytes = rest;
        w = w.wrapping_add(unzigzag(read_varint(&mut bytes)?));
        out.push((t, f64::from_bits(u64::from_le_bytes(*v)), w));
    }
    Some(out)
}

fn zigzag(d: i64) -> u64 {
    ((d << 1) ^ (d >> 63)) as u64
}

fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

fn varint(out: &mut Vec<u8>, mut u: u64) {
    while u >= 0x80 {
        out.push((u as u8) | 0x80);
        u >>= 7;
    }
    out.push(u as u8);
}

fn read_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut u = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        u |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(u);
        }
    }
    None
}

/// `#[serde(with = ...)]`: serialises readings packed.
pub fn serialize<S: Serializer>(readings: &[Reading], s: S) -> Result<S::Ok, S::Error> {
    let mut buf = Vec::with_capacity(readings.len() * 11);
    pack(readings, &mut buf);
    s.serialize_bytes(&buf)
}

/// `#[serde(with = ...)]`: reads packed readings back.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Reading>, D::Error> {
    struct Packed;
    impl<'de> Visitor<'de> for Packed {
        type Value = Vec<Reading>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("packed readings")
        }
        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
            unpack(v).ok_or_else(|| E::custom("packed readings cut short"))
        }
        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
            self.visit_bytes(&v)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut bytes = Vec::new();
            while let Some(b) = seq.next_element::<u8>()? {
                bytes.push(b);
            }
            self.visit_bytes(&bytes)
        }
    }
    d.deserialize_bytes(Packed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_come_back_bit_for_bit_and_smaller() {
        let mut rng = crate::tools::fixture::Rng::new(5);
        let mut readings: Vec<Reading> = (0..1000)
            .map(|i| {
                let t = 1_700_000_000_000 + i * 100 + rng.below(20) as i64;
                (t, 20.0 + rng.normal(), 1_700_000_000_000 + (i / 50) * 5000)
            })
            .collect();
        // Edge cases: out of order, the extremes of time, every kind of float.
        readings.extend([
            (i64::MAX, f64::NAN, i64::MIN),
            (i64::MIN, -0.0, i64::MAX),
            (5, f64::INFINITY, 5),
            (4, f64::NEG_INFINITY, 4),
            (4, f64::from_bits(0x7ff8_0000_dead_beef), 0),
            (0, f64::MIN_POSITIVE / 2.0, 0),
        ]);
        let mut buf = Vec::new();
        pack(&readings, &mut buf);
        let back = unpack(&buf).expect("unpack");
        assert_eq!(back.len(), readings.len());
        for (a, b) in readings.iter().zip(&back) {
            assert_eq!((a.0, a.1.to_bits(), a.2), (b.0, b.1.to_bits(), b.2));
        }
        // The ordinary readings take 11-12 bytes instead of 24.
        let mut ordinary = Vec::new();
        pack(&readings[1..1000], &mut ordinary);
        assert!(ordinary.len() <= 999 * 12, "{} bytes", ordinary.len());
        // Cut short anywhere but at a reading's end: refused, never misread.
        let mut whole = 0;
        for cut in 0..buf.len() {
            if let Some(r) = unpack(&buf[..cut]) {
                whole += 1;
                assert!(
                    r.iter()
                        .zip(&readings)
                        .all(|(a, b)| a.0 == b.0 && a.2 == b.2)
                );
            }
        }
        assert_eq!(whole, readings.len(), "only cuts at a reading's end decode");
        assert_eq!(unpack(&[0x80; 11]), None, "a varint too long");
    }
}
