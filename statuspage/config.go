package statuspage

import "github.com/vantage-dev/vantage/config"

// PageFromConfig builds the Page of a configuration: its statuspage title,
// description and URL, each check's display name, description and group
// (in file order), the maintenance windows, and the site: locale, time
// zone, branding (the logo as read when the config was loaded) and the
// recurring maintenance windows.
func PageFromConfig(cfg *config.Config) Page {
	sp := cfg.StatusPage
	p := Page{Title: sp.Title, Description: sp.Description, URL: trimSlash(sp.URL),
		Site: Site{Locale: sp.Locale, Timezone: sp.Timezone, Subscribe: sp.Subscriptions.Enabled && sp.Subscriptions.Email != ""}}
	if b := sp.Branding; b != nil {
		p.Site.Logo, p.Site.LogoType, p.Site.CustomCSS = b.LogoData, b.LogoType, b.CustomCSS
		for _, l := range b.Links {
			p.Site.Links = append(p.Site.Links, Link{Name: l.Name, URL: l.URL})
		}
	}
	for _, c := range cfg.Checks {
		p.Checks = append(p.Checks, PageCheck{Name: c.Name, DisplayName: c.DisplayName, Description: c.Description, Group: c.Group})
	}
	for _, m := range cfg.Maintenance {
		if m.Recurring() {
			p.Site.Recurring = append(p.Site.Recurring, m)
			continue
		}
		p.Maintenance = append(p.Maintenance, MaintenanceWindow{Title: m.Title, Checks: append([]string(nil), m.Checks...), Start: m.Start, End: m.End})
	}
	return p
}

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}
