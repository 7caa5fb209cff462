"""Wall-clock helper shared by the Blender-side benchmarks."""
import statistics
import time


def timed_ms(fn, repeats: int = 5) -> tuple[float, float]:
    """Run ``fn`` ``repeats`` times; (median, min) wall time in milliseconds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times), min(times)
