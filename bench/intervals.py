"""Summaries of a result over seeds: median and IQM with 95% bootstrap confidence intervals.

IQM, the interquartile mean, averages the middle half of the seeds: steadier than the
median, less swayed by one bad seed than the mean. The intervals resample the seeds
(scipy.stats.bootstrap, percentile method, a fixed random state so that a rerun prints
the same interval). An unsolved seed enters as +inf, the worst value, so that it is never
mistaken for a number of steps: a median or bound past the budget reads "unsolved".
"""

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 10_000
UNSOLVED = 1e12  # what +inf becomes inside the bootstrap, which needs finite numbers


def iqm(values, axis=-1):
    """Interquartile mean: the mean of the middle 50% (25% trimmed from each end)."""
    return stats.trim_mean(values, 0.25, axis=axis)


def summarize(values, seed=0):
    """dict(n, median, median_ci, iqm, iqm_ci) of values (one per seed; inf = unsolved)."""
    x = np.where(np.isinf(np.asarray(values, dtype=float)), UNSOLVED, values).astype(float)
    largest = x[x < UNSOLVED].max(initial=-np.inf)  # no statistic of solved seeds alone goes past it

    def back(value):  # a statistic that reached into the unsolved seeds is itself unsolved
        return float("inf") if value > largest else value

    summary = dict(n=len(x))
    for name, statistic in (("median", np.median), ("iqm", iqm)):
        point = float(statistic(x))
        if len(x) < 2:  # one seed: no interval to give
            low, high = np.nan, np.nan
        elif np.all(x == x[0]):  # every seed alike: resampling cannot move the statistic
            low, high = point, point
        else:
            result = stats.bootstrap(
                (x,),
                statistic,
                n_resamples=RESAMPLES,
                confidence_level=CONFIDENCE,
                method="percentile",
                random_state=np.random.default_rng(seed),
            )
            low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
        summary[name], summary[f"{name}_ci"] = back(point), (back(low), back(high))
    return summary


def two_rows(statistic, x, y, seed=0):
    """statistic(x, y) of two rows' per-seed values, with a 95% bootstrap interval that resamples each row apart.

    With one seed in a row there is nothing to resample: the interval is (nan, nan).
    """
    if min(len(x), len(y)) < 2:
        return float(statistic(np.asarray(x), np.asarray(y))), (np.nan, np.nan)
    result = stats.bootstrap(
        (x, y),
        statistic,
        n_resamples=RESAMPLES,
        confidence_level=CONFIDENCE,
        method="percentile",
        paired=False,
        vectorized=True,
        random_state=np.random.default_rng(seed),
    )
    return float(statistic(x, y)), (float(result.confidence_interval.low), float(result.confidence_interval.high))


def probability_of_improvement(x, y, seed=0):
    """P(X < Y) for a random seed of each (ties count half), with a 95% bootstrap interval.

    x, y: per-seed values where lower is better (env steps to solve; inf = unsolved).
    """

    def statistic(a, b, axis=-1):
        a, b = np.expand_dims(a, -1), np.expand_dims(b, -2)
        return ((a < b) + 0.5 * (a == b)).mean(axis=(-2, -1))

    x, y = (np.where(np.isinf(np.asarray(v, dtype=float)), UNSOLVED, v).astype(float) for v in (x, y))
    return two_rows(statistic, x, y, seed)


def ratio_of_medians(x, y, seed=0):
    """median(x) / median(y) of two rows' per-seed values (wall times), with a 95% bootstrap interval."""

    def statistic(a, b, axis=-1):
        return np.median(a, axis=axis) / np.median(b, axis=axis)

    return two_rows(statistic, np.asarray(x, float), np.asarray(y, float), seed)


def fmt(value, budget=None, digits=0):
    """A number for a table: thousands separated; inf (or past budget) as 'unsolved'."""
    if value is None or np.isinf(value) or (budget is not None and value > budget):
        return "unsolved"
    return f"{value:,.{digits}f}"


def fmt_interval(low, high, budget=None, digits=0):
    """' [low, high]', or nothing where there is no interval (one seed)."""
    if np.isnan(low) or np.isnan(high):
        return ""
    return f" [{fmt(low, budget, digits)}, {fmt(high, budget, digits)}]"


def fmt_summary(summary, budget=None, digits=0):
    """'median [low, high]' and 'iqm [low, high]' strings for a table row."""
    return tuple(
        fmt(summary[k], budget, digits) + fmt_interval(*summary[k + "_ci"], budget, digits) for k in ("median", "iqm")
    )


def main():
    """python bench/intervals.py FILE.csv COLUMN: one column of a per-seed table, summarised."""
    import argparse
    import csv

    p = argparse.ArgumentParser(description="Median and IQM, with 95% bootstrap intervals, of a per-seed CSV column.")
    p.add_argument("csv")
    p.add_argument("column")
    p.add_argument("--digits", type=int, default=1)
    args = p.parse_args()
    with open(args.csv) as f:
        rows = list(csv.DictReader(f))
    values = [float(r[args.column]) if r[args.column] not in ("", "None") else np.inf for r in rows]
    median_text, iqm_text = fmt_summary(summarize(values), digits=args.digits)
    per_seed = ", ".join(fmt(v, digits=args.digits) for v in values)
    print(f"{args.column} over {len(values)} seeds: median {median_text}, IQM {iqm_text}; per seed: {per_seed}")


if __name__ == "__main__":
    main()
