package config

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Limits of the status page's branding keys.
const (
	// MaxLogoBytes is the largest logo file accepted.
	MaxLogoBytes = 512 << 10
	// MaxCustomCSS is the longest custom_css accepted, in bytes.
	MaxCustomCSS = 64 << 10
	// MaxLinks is the number of header links accepted.
	MaxLinks = 10
	// maxLinkName is the longest link name, in characters.
	maxLinkName = 60
)

// logoTypes are the media types a logo may have.
var logoTypes = []string{"image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml", "image/x-icon"}

// branding reads the statuspage keys logo, links and custom_css.
func (p *parser) branding(m *mapping, sp *StatusPage) {
	s := &Branding{}
	defer func() {
		if s.Logo != "" || len(s.Links) > 0 || s.CustomCSS != "" {
			sp.Branding = s
		}
	}()
	if lf := m.get("logo"); set(lf) {
		if path, ok := p.str(lf); ok {
			p.logo(lf, strings.TrimSpace(path), s)
		}
	}
	if lf := m.get("links"); set(lf) {
		p.links(lf, s)
	}
	if cf := m.get("custom_css"); set(cf) {
		if css, ok := p.str(cf); ok {
			switch {
			case len(css) > MaxCustomCSS:
				p.errorf(cf.key, "custom_css is %d bytes, at most %d allowed", len(css), MaxCustomCSS)
			case !utf8.ValidString(css):
				p.errorf(cf.key, "custom_css is not valid UTF-8")
			default:
				s.CustomCSS = css
			}
		}
	}
}

// logo reads the logo file: relative to the config file's directory, at
// most MaxLogoBytes, one of logoTypes.
func (p *parser) logo(f *field, path string, s *Branding) {
	if path == "" {
		p.errorf(f.key, "logo must be the path of an image file, got an empty value")
		return
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(p.file), path)
	}
	data, err := readLimited(path, MaxLogoBytes)
	if err != nil {
		p.errorf(f.key, "logo %v", err)
		return
	}
	typ := logoType(path, data)
	if typ == "" {
		p.errorf(f.key, "logo %s is not a PNG, JPEG, GIF, WebP, SVG or ICO image", path)
		return
	}
	s.Logo, s.LogoData, s.LogoType = path, data, typ
}

// readLimited reads a regular file of at most limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot be read: %v", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot be read: %v", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s is %d bytes, at most %d allowed", path, st.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(fh, limit+1))
	if err != nil {
		return nil, fmt.Errorf("cannot be read: %v", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is over %d bytes", path, limit)
	}
	return data, nil
}

// logoType is the media type of a logo, or "" when it is not an accepted
// image. SVG is recognised by its extension and root element.
func logoType(path string, data []byte) string {
	if strings.EqualFold(filepath.Ext(path), ".svg") {
		head := data[:min(len(data), 4096)]
		if bytes.Contains(head, []byte("<svg")) {
			return "image/svg+xml"
		}
		return ""
	}
	typ := http.DetectContentType(data)
	if typ == "image/vnd.microsoft.icon" {
		typ = "image/x-icon"
	}
	if oneOf(typ, logoTypes...) && typ != "image/svg+xml" {
		return typ
	}
	return ""
}

// links reads the header links: a list of {name, url}, name one line of
// text, url an http(s) URL or a path on the page's site.
func (p *parser) links(f *field, s *Branding) {
	items, ok := p.items(f)
	if !ok {
		return
	}
	if len(items) > MaxLinks {
		p.errorf(f.key, "links has %d entries, at most %d allowed", len(items), MaxLinks)
		return
	}
	for _, it := range items {
		m, ok := p.mapOf(it, "link")
		if !ok {
			continue
		}
		if m.node == nil {
			p.errorf(it, "each link must be a mapping with name and url, got an empty value")
			continue
		}
		l, good := StatusPageLink{}, true
		nf, uf := m.get("name"), m.get("url")
		switch name, ok := p.str(nf); {
		case nf == nil || !ok && !set(nf):
			p.errorf(linkPos(nf, m.node), "link needs a name")
			good = false
		case ok:
			name = strings.TrimSpace(name)
			switch {
			case name == "":
				p.errorf(nf.key, "link name is empty")
				good = false
			case utf8.RuneCountInString(name) > maxLinkName || strings.ContainsAny(name, "\n\r\t"):
				p.errorf(nf.key, "link name must be one line of at most %d characters", maxLinkName)
				good = false
			}
			l.Name = name
		default:
			good = false
		}
		switch u, ok := p.str(uf); {
		case uf == nil || !ok && !set(uf):
			p.errorf(linkPos(uf, m.node), "link needs a url")
			good = false
		case ok:
			u = strings.TrimSpace(u)
			if strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "//") {
				l.URL = u
			} else if pr := httpURLProblem(u); pr != "" {
				p.errorf(uf.key, "link url %s (or a path such as /about)", pr)
				good = false
			} else {
				l.URL = u
			}
		default:
			good = false
		}
		m.unknown()
		if good {
			s.Links = append(s.Links, l)
		}
	}
}

// linkPos is where a missing key of a link is reported: the link.
func linkPos(f *field, def *yaml.Node) *yaml.Node {
	if f != nil {
		return f.key
	}
	return def
}
