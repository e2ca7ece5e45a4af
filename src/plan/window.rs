//! `[window]`: size and slide, and the bound on the windows one reading may join.

use super::MAX_WINDOWS_PER_READING;
use super::validate::Checker;
use crate::config::schema::*;
use crate::stages::window::WindowSpec;

/// `[window]`; returns the window assignment.
pub(super) fn window(c: &mut Checker, config: &PipelineConfig) -> WindowSpec {
    let w = &config.window;
    let size = w.size.get_ref().ms;
    if size <= 0 {
        c.at(&w.size, "window size must be positive", None);
    }
    let slide = match (w.kind, &w.slide) {
        (WindowKind::Tumbling, Some(s)) if s.get_ref().ms != size => {
            c.at(
                s,
                "a tumbling window has no slide",
                Some("remove `slide`, or use kind = \"sliding\""),
            );
            size
        }
        (WindowKind::Tumbling, _) => size,
        (WindowKind::Sliding, None) => {
            c.at(
                &w.size,
                "a sliding window needs `slide`",
                Some("add e.g. slide = \"5s\""),
            );
            size
        }
        (WindowKind::Sliding, Some(s)) => {
            let sl = s.get_ref().ms;
            if sl <= 0 {
                c.at(s, "slide must be positive", None);
            } else if sl > size {
                c.at(
                    s,
                    format!(
                        "slide {} is larger than the window size {}",
                        s.get_ref(),
                        w.size.get_ref()
                    ),
                    Some("readings between windows would be skipped; make slide <= size"),
                );
            }
            sl
        }
    };
    let window = WindowSpec::new(size.max(1), slide.clamp(1, size.max(1)));
    // Each reading is copied into every window that holds it: bound that, or one accepted
    // setting (a day sliding by 1 ms) turns every reading into 86 million copies.
    if size > 0 && slide > 0 && size / slide > MAX_WINDOWS_PER_READING {
        let at = w.slide.as_ref().map_or(w.size.span(), |s| s.span());
        c.errs.push(c.loc.span(
            at,
            format!(
                "a {} window sliding by {} puts each reading into {} windows; at most {MAX_WINDOWS_PER_READING} are allowed",
                w.size.get_ref(),
                w.slide.as_ref().map_or_else(String::new, |s| s.get_ref().to_string()),
                size / slide
            ),
            Some(format!(
                "make slide at least {} (size / {MAX_WINDOWS_PER_READING})",
                crate::config::Duration::from_ms((size + MAX_WINDOWS_PER_READING - 1) / MAX_WINDOWS_PER_READING)
            )),
        ));
    }
    window
}
