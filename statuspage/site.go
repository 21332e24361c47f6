package statuspage

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vantage-dev/vantage/config"
)

// Site is how a page speaks and looks, beyond its checks: its language
// and time zone, its operator's branding, and its recurring maintenance
// windows (whose occurrences are computed at each render).
type Site struct {
	// Locale is "en" (default) or "ko": the language of every public
	// string of the page, its check and incident pages, feed and badges.
	Locale string
	// Timezone is the IANA zone every time shown is in; default UTC.
	Timezone string
	// Logo is an image shown in the header, served from memory; LogoType
	// is its media type.
	Logo     []byte
	LogoType string
	// Links are shown in the header.
	Links []Link
	// CustomCSS is served as a stylesheet after the page's own.
	CustomCSS string
	// Recurring are maintenance windows that repeat (config.Maintenance
	// with Every): the page shows each one's current occurrence and its
	// next.
	Recurring []config.Maintenance
	// Subscribe shows the subscription form in the footer
	// (statuspage.subscriptions with an email notifier; subscribe.go).
	Subscribe bool
}

// Link is a link in the page's header.
type Link struct {
	Name string
	URL  string
}

// windowsAt is the page's maintenance windows as of now: the one-off
// windows, and each recurring window's occurrence in progress and next
// one, in start order.
func (p *Page) windowsAt(now time.Time) []MaintenanceWindow {
	if len(p.Site.Recurring) == 0 {
		return p.Maintenance
	}
	out := append([]MaintenanceWindow(nil), p.Maintenance...)
	for _, m := range p.Site.Recurring {
		if s, e, ok := m.Occurrence(now); ok {
			out = append(out, MaintenanceWindow{Title: m.Title, Checks: m.Checks, Start: s, End: e})
		}
		if s, e, ok := m.Next(now); ok {
			out = append(out, MaintenanceWindow{Title: m.Title, Checks: m.Checks, Start: s, End: e})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// maintID is a maintenance occurrence's id in the page and the
// Statuspage documents: the same for the occurrence whatever else the
// page lists.
func maintID(w MaintenanceWindow) string {
	h := sha256.Sum256([]byte(w.Title + "\x00" + strings.Join(w.Checks, "\x00")))
	return fmt.Sprintf("maint-%d-%s", w.Start.Unix(), hex.EncodeToString(h[:4]))
}
