package paging

import (
	"strings"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/notifier"
)

// Certificate warnings (expect.cert_expiry). A certificate closer than
// cert_expiry to its expiry does not fail a probe: the designated sender
// sends one warning per certificate through the check's notifiers (kind
// cert, id notifier.CertID(check, serial): the same on every node, so the
// sent log dedups it), and its resolve once a newer certificate is served.
// Each node follows the certificate its own probes are served; regions
// served different certificates (edges) warn about each.

// certState is what this node's probes see of a check's certificate.
type certState struct {
	cur      notifier.CertInfo
	expiring bool
	since    time.Time                    // when cur was first seen expiring
	warned   map[string]notifier.CertInfo // serial -> warned about (queued here or found sent), not resolved
}

// Cert takes the certificate a probe of check was served and whether it
// expires within the check's cert_expiry. It costs O(1).
func (p *Pager) Cert(check string, info notifier.CertInfo, expiring bool, now time.Time) {
	info.Serial = strings.ToUpper(info.Serial)
	if info.Serial == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byName[check] == nil {
		return
	}
	cs := p.certs[check]
	if cs == nil {
		if !expiring {
			return // nothing to say about a certificate far from expiry
		}
		cs = &certState{warned: map[string]notifier.CertInfo{}}
		p.certs[check] = cs
	}
	if cs.cur.Serial != info.Serial || cs.expiring != expiring {
		cs.since = now
	}
	cs.cur, cs.expiring = info, expiring
}

// certJobsLocked produces the warnings and their resolves.
func (p *Pager) certJobsLocked(now time.Time, isSender bool) []job {
	var jobs []job
	for check, cs := range p.certs {
		c := p.byName[check]
		if c == nil {
			delete(p.certs, check)
			continue
		}
		if !cs.expiring && len(cs.warned) == 0 {
			delete(p.certs, check)
			continue
		}
		if !isSender {
			continue
		}
		notifiers := p.notifiersLocked(c)
		if _, done := cs.warned[cs.cur.Serial]; cs.expiring && !done {
			info := cs.cur
			ev := p.certEventLocked(c, info, cs.since, now)
			jobs = append(jobs, job{ev: ev, notifiers: notifiers, done: func() { cs.warned[info.Serial] = info }})
		}
		for serial, info := range cs.warned {
			if serial == cs.cur.Serial || cs.expiring {
				continue // still served, or the newer one expires too
			}
			renewed := cs.cur
			ev := p.certEventLocked(c, info, cs.since, now)
			ev.Action, ev.Renewed = notifier.ActionResolve, &renewed
			at := now.UTC()
			ev.ResolvedAt = &at
			jobs = append(jobs, job{ev: ev, notifiers: notifiers, done: func() { delete(cs.warned, serial) }})
		}
	}
	return jobs
}

func (p *Pager) certEventLocked(c *config.Check, info notifier.CertInfo, since, now time.Time) notifier.Event {
	ev := p.noticeLocked(c, notifier.KindCert, notifier.CertID(c.Name, info.Serial), since, now)
	ev.Cert = &info
	return ev
}
