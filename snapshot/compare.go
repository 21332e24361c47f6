package snapshot

import (
	"fmt"
	"slices"
	"strings"
)

// Difference is one thing the regions saw differently.
type Difference struct {
	Field string `json:"field"` // dns.addrs, tls.leaf, http.status, ...
	// Summary says it in a sentence: "ap-south resolved api.example.com
	// to 203.0.113.9; eu-west and us-east to 198.51.100.4".
	Summary string `json:"summary"`
	// Values by label (the region, or region/node when a region has
	// several snapshots).
	Values map[string]string `json:"values"`
}

// Label is how a snapshot is named among others: its region, or
// region/node when its region has several.
func Label(s *Snapshot, all []*Snapshot) string {
	n := 0
	for _, o := range all {
		if o.Region == s.Region {
			n++
		}
	}
	if n > 1 {
		return s.Region + "/" + s.Node
	}
	return s.Region
}

// comparison is one field: how to read it and how to say it.
type comparison struct {
	field string
	// value returns the field's value, ok false when the snapshot has no
	// such part (left out of the comparison).
	value func(*Snapshot) (string, bool)
	// verb starts the sentence: "resolved api.example.com to".
	verb func(all []*Snapshot) string
}

const none = "nothing"

var comparisons = []comparison{
	{"dns.resolver", func(s *Snapshot) (string, bool) {
		if s.DNS == nil {
			return "", false
		}
		return s.DNS.Resolver, true
	}, func([]*Snapshot) string { return "asked" }},
	{"dns.addrs", func(s *Snapshot) (string, bool) {
		if s.DNS == nil {
			return "", false
		}
		if len(s.DNS.Addrs) == 0 {
			if s.DNS.Rcode != "" && s.DNS.Rcode != "NOERROR" {
				return s.DNS.Rcode, true
			}
			if s.DNS.Error != "" {
				return "an error (" + s.DNS.Error + ")", true
			}
			return none, true
		}
		a := slices.Clone(s.DNS.Addrs)
		slices.Sort(a)
		return strings.Join(a, ", "), true
	}, func(all []*Snapshot) string {
		for _, s := range all {
			if s.DNS != nil {
				return "resolved " + s.DNS.Name + " to"
			}
		}
		return "resolved the name to"
	}},
	{"connect", func(s *Snapshot) (string, bool) {
		if s.Connect == nil {
			return "", false
		}
		if !s.Connect.OK {
			return s.Connect.Addr + " and failed: " + s.Connect.Error, true
		}
		return s.Connect.Addr, true
	}, func([]*Snapshot) string { return "connected to" }},
	{"tls.leaf", func(s *Snapshot) (string, bool) {
		if s.TLS == nil {
			return "", false
		}
		if len(s.TLS.Chain) == 0 {
			return none, true
		}
		l := s.TLS.Chain[0]
		return fmt.Sprintf("%s issued by %s (sha256 %s…)", l.Subject, l.Issuer, short(l.SHA256)), true
	}, func([]*Snapshot) string { return "was served the certificate" }},
	{"tls.chain", func(s *Snapshot) (string, bool) {
		if s.TLS == nil || len(s.TLS.Chain) == 0 {
			return "", false
		}
		var fps []string
		for _, c := range s.TLS.Chain {
			fps = append(fps, short(c.SHA256))
		}
		return fmt.Sprintf("%d certificates (%s)", len(fps), strings.Join(fps, " → ")), true
	}, func([]*Snapshot) string { return "was served a chain of" }},
	{"tls.verified", func(s *Snapshot) (string, bool) {
		if s.TLS == nil || len(s.TLS.Chain) == 0 {
			return "", false
		}
		if s.TLS.Verified {
			return "valid", true
		}
		return "not valid: " + s.TLS.VerifyError, true
	}, func([]*Snapshot) string { return "found the chain" }},
	{"http.status", func(s *Snapshot) (string, bool) {
		if s.HTTP == nil {
			return "", false
		}
		if s.HTTP.Status == 0 {
			if s.HTTP.Error != "" {
				return "no response (" + s.HTTP.Error + ")", true
			}
			return "no response", true
		}
		return fmt.Sprint(s.HTTP.Status), true
	}, func([]*Snapshot) string { return "got" }},
	{"http.header.server", header("Server"), func([]*Snapshot) string { return "was answered by Server:" }},
	{"http.header.via", header("Via"), func([]*Snapshot) string { return "was answered through Via:" }},
	{"http.header.content-type", header("Content-Type"), func([]*Snapshot) string { return "got Content-Type:" }},
	{"http.header.location", header("Location"), func([]*Snapshot) string { return "was redirected to" }},
	{"http.body", func(s *Snapshot) (string, bool) {
		if s.HTTP == nil || s.HTTP.Status == 0 {
			return "", false
		}
		if s.HTTP.BodyBytes == 0 {
			return "an empty body", true
		}
		return fmt.Sprintf("a body of sha256 %s…", short(s.HTTP.BodySHA256)), true
	}, func([]*Snapshot) string { return "got" }},
	{"probe.code", func(s *Snapshot) (string, bool) {
		if s.Probe == nil {
			return "", false
		}
		if s.Probe.Code == "" {
			return "no error", true
		}
		return s.Probe.Code, true
	}, func([]*Snapshot) string { return "failed the check with" }},
	{"traceroute.end", func(s *Snapshot) (string, bool) {
		t := s.Trace
		if t == nil || len(t.Hops) == 0 {
			return "", false
		}
		if t.Reached {
			if len(t.Hops) == 1 {
				return "the target in 1 hop", true
			}
			return fmt.Sprintf("the target in %d hops", len(t.Hops)), true
		}
		for i := len(t.Hops) - 1; i >= 0; i-- {
			if h := t.Hops[i]; h.Addr != "" {
				return fmt.Sprintf("%s at hop %d, then nothing", h.Addr, h.TTL), true
			}
		}
		return "nothing: no hop answered", true
	}, func([]*Snapshot) string { return "traced the path to" }},
}

func header(name string) func(*Snapshot) (string, bool) {
	return func(s *Snapshot) (string, bool) {
		if s.HTTP == nil || s.HTTP.Status == 0 {
			return "", false
		}
		for k, v := range s.HTTP.Headers {
			if strings.EqualFold(k, name) {
				return strings.Join(v, ", "), true
			}
		}
		return none, true
	}
}

func short(fp string) string {
	if len(fp) > 16 {
		return fp[:16]
	}
	return fp
}

// Compare lists what differs between the snapshots (of one incident), in
// a fixed order of fields; fields every snapshot agrees on are left out.
func Compare(snaps []*Snapshot) []Difference {
	var out []Difference
	if len(snaps) < 2 {
		return out
	}
	labels := make([]string, len(snaps))
	for i, s := range snaps {
		labels[i] = Label(s, snaps)
	}
	for _, c := range comparisons {
		values := map[string]string{}
		var order []string // distinct values, in order of first appearance
		groups := map[string][]string{}
		for i, s := range snaps {
			v, ok := c.value(s)
			if !ok {
				continue
			}
			values[labels[i]] = v
			if _, seen := groups[v]; !seen {
				order = append(order, v)
			}
			groups[v] = append(groups[v], labels[i])
		}
		if len(order) < 2 {
			continue
		}
		// The smallest group first: the odd one out leads the sentence.
		slices.SortStableFunc(order, func(a, b string) int { return len(groups[a]) - len(groups[b]) })
		var parts []string
		for i, v := range order {
			if i == 0 {
				parts = append(parts, fmt.Sprintf("%s %s %s", andList(groups[v]), c.verb(snaps), v))
			} else {
				parts = append(parts, fmt.Sprintf("%s %s", andList(groups[v]), v))
			}
		}
		// The later parts drop the verb's object when it is the last word
		// ("to"): "eu-west and us-east to 198.51.100.4".
		verb := c.verb(snaps)
		if i := strings.LastIndex(verb, " "); i >= 0 && len(order) > 1 {
			tail := verb[i+1:]
			if tail == "to" || tail == "with" || tail == "by" || tail == "through" {
				for j := 1; j < len(parts); j++ {
					g := groups[order[j]]
					parts[j] = fmt.Sprintf("%s %s %s", andList(g), tail, order[j])
				}
			}
		}
		out = append(out, Difference{Field: c.field, Summary: strings.Join(parts, "; "), Values: values})
	}
	return out
}

// andList joins "a", "a and b", "a, b and c".
func andList(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}
