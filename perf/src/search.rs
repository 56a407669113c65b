//! The search for the highest offered rate whose loss stays within a target: double the rate
//! while the trials pass, then bisect between the last pass and the first failure, in a
//! bounded number of trials. Written against a [`System`] so a fake one can test it.

/// What one trial at an offered rate came to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// Fraction of the offered flows that did not come out (0..=1).
    pub loss: f64,
    /// The rate the generator really sent at (it may fall short of the offered one).
    pub achieved: f64,
}

/// Something to offer load to.
pub trait System {
    type Error;
    /// Runs one trial at `rate` (packets per second).
    fn trial(&mut self, rate: f64) -> Result<Outcome, Self::Error>;
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchParams {
    /// First rate tried.
    pub start: f64,
    /// Never offer more.
    pub max_rate: f64,
    /// Never offer less.
    pub min_rate: f64,
    /// Highest acceptable loss (1e-4 = 0.01 %).
    pub loss_target: f64,
    /// Most trials.
    pub max_steps: usize,
    /// Stop bisecting when the failing rate is within this factor of the passing one.
    pub precision: f64,
    /// A trial whose achieved rate is below this fraction of the offered one means the
    /// generator is the limit: the search stops there.
    pub generator_floor: f64,
}

impl Default for SearchParams {
    fn default() -> Self {
        SearchParams {
            start: 2_000.0,
            max_rate: 5_000_000.0,
            min_rate: 10.0,
            loss_target: 1e-4,
            max_steps: 12,
            precision: 1.05,
            generator_floor: 0.95,
        }
    }
}

/// Why the search stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Bracketed to the precision.
    Converged,
    /// Out of trials.
    MaxSteps,
    /// The generator could not send faster than the passing rate.
    GeneratorBound,
    /// Passed at the maximum rate.
    MaxRate,
    /// Failed even at the minimum rate.
    MinRate,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchResult {
    /// Every trial in order: (offered rate, outcome).
    pub trials: Vec<(f64, Outcome)>,
    /// Index in `trials` of the highest passing trial (by achieved rate).
    pub best: Option<usize>,
    pub stop: StopReason,
}

/// Runs the search. `on_trial` sees each trial as it completes (progress).
pub fn search<S: System>(
    sys: &mut S,
    p: &SearchParams,
    mut on_trial: impl FnMut(usize, f64, &Outcome),
) -> Result<SearchResult, S::Error> {
    let mut trials: Vec<(f64, Outcome)> = Vec::new();
    let mut lo: Option<f64> = None; // highest passing offered rate
    let mut hi: Option<f64> = None; // lowest failing offered rate
    let mut rate = p.start.clamp(p.min_rate, p.max_rate);
    let stop = loop {
        if trials.len() >= p.max_steps {
            break StopReason::MaxSteps;
        }
        let o = sys.trial(rate)?;
        on_trial(trials.len(), rate, &o);
        trials.push((rate, o));
        let pass = o.loss <= p.loss_target;
        let short = o.achieved < rate * p.generator_floor;
        if pass {
            lo = Some(lo.map_or(rate, |l: f64| l.max(rate)));
            if short {
                break StopReason::GeneratorBound;
            }
        } else {
            hi = Some(hi.map_or(rate, |h: f64| h.min(rate)));
        }
        rate = match (lo, hi) {
            (Some(l), None) => {
                if l >= p.max_rate {
                    break StopReason::MaxRate;
                }
                (l * 2.0).min(p.max_rate)
            }
            (None, Some(h)) => {
                if h <= p.min_rate {
                    break StopReason::MinRate;
                }
                (h / 2.0).max(p.min_rate)
            }
            (Some(l), Some(h)) => {
                if h <= l * p.precision {
                    break StopReason::Converged;
                }
                (l * h).sqrt()
            }
            (None, None) => unreachable!("a trial either passes or fails"),
        };
    };
    let best = trials
        .iter()
        .enumerate()
        .filter(|(_, (_, o))| o.loss <= p.loss_target)
        .max_by(|a, b| a.1 .1.achieved.total_cmp(&b.1 .1.achieved))
        .map(|(i, _)| i);
    Ok(SearchResult { trials, best, stop })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loses everything above its capacity; the generator tops out at `gen_max`.
    struct Fake {
        capacity: f64,
        gen_max: f64,
        calls: usize,
    }

    impl System for Fake {
        type Error = ();
        fn trial(&mut self, rate: f64) -> Result<Outcome, ()> {
            self.calls += 1;
            let achieved = rate.min(self.gen_max);
            let loss = if achieved <= self.capacity {
                0.0
            } else {
                1.0 - self.capacity / achieved
            };
            Ok(Outcome { loss, achieved })
        }
    }

    fn fake(capacity: f64) -> Fake {
        Fake {
            capacity,
            gen_max: f64::INFINITY,
            calls: 0,
        }
    }

    #[test]
    fn finds_the_capacity_within_the_precision() {
        for cap in [3_000.0, 47_000.0, 123_456.0, 900_000.0] {
            let mut f = fake(cap);
            let p = SearchParams {
                max_steps: 20,
                ..SearchParams::default()
            };
            let r = search(&mut f, &p, |_, _, _| {}).unwrap();
            assert_eq!(r.stop, StopReason::Converged, "{cap}");
            let best = r.trials[r.best.unwrap()].0;
            assert!(best <= cap && best * p.precision >= cap, "{cap}: {best}");
            assert_eq!(f.calls, r.trials.len());
            assert!(r.trials.len() <= 20);
        }
    }

    #[test]
    fn bounded_by_max_steps() {
        let mut f = fake(1e6);
        let p = SearchParams {
            max_steps: 5,
            ..SearchParams::default()
        };
        let r = search(&mut f, &p, |_, _, _| {}).unwrap();
        assert_eq!(r.stop, StopReason::MaxSteps);
        assert_eq!(f.calls, 5);
        // 2k, 4k, 8k, 16k, 32k: all pass
        assert_eq!(r.trials[r.best.unwrap()].0, 32_000.0);
    }

    #[test]
    fn goes_down_when_the_first_trial_fails() {
        let mut f = fake(300.0);
        let r = search(&mut f, &SearchParams::default(), |_, _, _| {}).unwrap();
        let best = r.trials[r.best.unwrap()].0;
        assert!(best <= 300.0 && best * 1.05 >= 300.0, "{best}");
        let mut f = fake(1.0);
        let r = search(&mut f, &SearchParams::default(), |_, _, _| {}).unwrap();
        assert_eq!(r.stop, StopReason::MinRate);
        assert_eq!(r.best, None);
    }

    #[test]
    fn stops_when_the_generator_is_the_limit() {
        let mut f = Fake {
            capacity: 1e9,
            gen_max: 50_000.0,
            calls: 0,
        };
        let r = search(&mut f, &SearchParams::default(), |_, _, _| {}).unwrap();
        assert_eq!(r.stop, StopReason::GeneratorBound);
        assert_eq!(r.trials[r.best.unwrap()].1.achieved, 50_000.0);
    }

    #[test]
    fn stops_at_the_max_rate() {
        let mut f = fake(1e9);
        let p = SearchParams {
            max_rate: 10_000.0,
            ..SearchParams::default()
        };
        let r = search(&mut f, &p, |_, _, _| {}).unwrap();
        assert_eq!(r.stop, StopReason::MaxRate);
        assert_eq!(r.trials.last().unwrap().0, 10_000.0);
    }

    #[test]
    fn a_loss_at_the_target_passes() {
        // 0.01 % loss exactly passes; just above fails
        struct Edge;
        impl System for Edge {
            type Error = ();
            fn trial(&mut self, rate: f64) -> Result<Outcome, ()> {
                let loss = if rate <= 8_000.0 { 1e-4 } else { 1.1e-4 };
                Ok(Outcome {
                    loss,
                    achieved: rate,
                })
            }
        }
        let r = search(&mut Edge, &SearchParams::default(), |_, _, _| {}).unwrap();
        assert_eq!(r.trials[r.best.unwrap()].0, 8_000.0);
    }
}
