# W2-overload: does the backlog drain in due order? (bench/run.sh)
# Files: dues sorted, receives sorted, then "receive_ms due_ms" per delivered job.
# Output: "starved capacity max_excess_ms". backlog(t) = jobs due by t − jobs delivered by t; a job
# is starved when its lateness exceeds backlog(its due time) / capacity + 1 s, with capacity = the
# median deliveries per second over the seconds that began with a backlog and delivered something.
function count_le(arr, n, t,   lo, hi, mid) {  # how many of the sorted arr[1..n] are <= t
  lo = 0; hi = n
  while (lo < hi) { mid = int((lo + hi + 1) / 2); if (arr[mid] <= t) lo = mid; else hi = mid - 1 }
  return lo
}
FILENAME == ARGV[1] { ds[++nd] = $1 + 0; next }
FILENAME == ARGV[2] { rs[++nr] = $1 + 0; next }
{ r[++n] = $1 + 0; d[n] = $2 + 0 }
END {
  k = 0
  for (s = int(ds[1] / 1000) * 1000; s <= rs[nr]; s += 1000) {
    if (count_le(ds, nd, s) - count_le(rs, nr, s) <= 0) continue
    c = count_le(rs, nr, s + 999.999) - count_le(rs, nr, s - 0.001)
    if (c == 0) continue  # nothing delivered: not a measure of capacity (a stall, or one job held back)
    for (j = ++k; j > 1 && per[j - 1] > c; j--) per[j] = per[j - 1]  # insertion sort
    per[j] = c
  }
  cap = k ? per[int((k + 1) / 2)] : n
  if (cap < 1) cap = 1
  starved = 0; worst = -1e18
  for (i = 1; i <= n; i++) {
    backlog = count_le(ds, nd, d[i]) - count_le(rs, nr, d[i])
    if (backlog < 0) backlog = 0
    excess = (r[i] - d[i]) - (backlog / cap * 1000 + 1000)
    if (excess > 0) starved++
    if (excess > worst) worst = excess
  }
  printf "%d %.0f %.0f\n", starved, cap, worst
}
