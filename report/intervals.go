package report

import "slices"

// iv is a half-open interval [a, b) of unix milliseconds.
type iv struct{ a, b int64 }

// set is a sorted list of disjoint, non-adjacent, non-empty intervals.
type set []iv

// normalize sorts ivs and merges overlapping and adjacent intervals; empty
// ones are dropped. It reuses ivs' storage.
func normalize(ivs []iv) set {
	out := ivs[:0]
	for _, x := range ivs {
		if x.b > x.a {
			out = append(out, x)
		}
	}
	slices.SortFunc(out, func(x, y iv) int {
		switch {
		case x.a < y.a:
			return -1
		case x.a > y.a:
			return 1
		}
		return 0
	})
	n := 0
	for _, x := range out {
		if n > 0 && x.a <= out[n-1].b {
			out[n-1].b = max(out[n-1].b, x.b)
			continue
		}
		out[n] = x
		n++
	}
	return set(out[:n])
}

// union returns s ∪ t.
func union(s, t set) set {
	if len(t) == 0 {
		return s
	}
	if len(s) == 0 {
		return t
	}
	all := make([]iv, 0, len(s)+len(t))
	all = append(append(all, s...), t...)
	return normalize(all)
}

// minus returns s \ t.
func minus(s, t set) set {
	if len(s) == 0 || len(t) == 0 {
		return s
	}
	var out set
	j := 0
	for _, x := range s {
		a := x.a
		for j < len(t) && t[j].b <= a {
			j++
		}
		k := j
		for k < len(t) && t[k].a < x.b {
			if t[k].a > a {
				out = append(out, iv{a, t[k].a})
			}
			a = max(a, t[k].b)
			if a >= x.b {
				break
			}
			k++
		}
		if a < x.b {
			out = append(out, iv{a, x.b})
		}
	}
	return out
}

// clip returns s ∩ [lo, hi).
func clip(s set, lo, hi int64) set {
	var out set
	for _, x := range s {
		a, b := max(x.a, lo), min(x.b, hi)
		if b > a {
			out = append(out, iv{a, b})
		}
	}
	return out
}

// measure is the total length of s.
func measure(s set) int64 {
	var n int64
	for _, x := range s {
		n += x.b - x.a
	}
	return n
}

// longest is the length of the longest interval of s.
func longest(s set) int64 {
	var n int64
	for _, x := range s {
		n = max(n, x.b-x.a)
	}
	return n
}

// perBucket adds the length of s inside each bucket [starts[i], starts[i+1])
// (the last bucket ends at end) to out[i].
func perBucket(s set, starts []int64, end int64, out []int64) {
	i := 0
	for _, x := range s {
		for i < len(starts) {
			be := end
			if i+1 < len(starts) {
				be = starts[i+1]
			}
			if be <= x.a {
				i++
				continue
			}
			a, b := max(x.a, starts[i]), min(x.b, be)
			if b > a {
				out[i] += b - a
			}
			if x.b <= be {
				break
			}
			i++
		}
	}
}
