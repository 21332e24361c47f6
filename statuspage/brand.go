package statuspage

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"image"
	"image/color"
	"image/png"
	"math"
	"net/http"
	"sync"
	"time"
)

// brandAssets are the operator's logo and stylesheet, served from memory
// at /brand/logo and /brand/custom.css with a content version in their
// URLs, and the header links.
type brandAssets struct {
	Logo, CSS               bool
	LogoVersion, CSSVersion string
	Links                   []Link
	logo, css               *doc
}

// brandOf prepares a site's branding; nil when it has none.
func brandOf(site Site, at time.Time) *brandAssets {
	if len(site.Logo) == 0 && site.CustomCSS == "" && len(site.Links) == 0 {
		return nil
	}
	b := &brandAssets{Links: site.Links}
	const cc = "public, max-age=86400"
	if len(site.Logo) > 0 && site.LogoType != "" {
		b.Logo, b.LogoVersion = true, version(site.Logo)
		b.logo = newDoc(site.Logo, site.LogoType, cc, at, nil)
	}
	if site.CustomCSS != "" {
		b.CSS, b.CSSVersion = true, version([]byte(site.CustomCSS))
		b.css = newDoc([]byte(site.CustomCSS), "text/css; charset=utf-8", cc, at, nil)
	}
	return b
}

func version(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:6])
}

// sameBrand reports whether two sites render the same: language, time
// zone and branding.
func sameBrand(a, b Site) bool {
	if a.Locale != b.Locale || a.Timezone != b.Timezone || a.LogoType != b.LogoType || a.CustomCSS != b.CustomCSS || a.Subscribe != b.Subscribe ||
		!bytes.Equal(a.Logo, b.Logo) || len(a.Links) != len(b.Links) {
		return false
	}
	for i := range a.Links {
		if a.Links[i] != b.Links[i] {
			return false
		}
	}
	return true
}

// hdrImageCSP keeps an SVG logo opened on its own from running anything.
var hdrImageCSP = []string{"default-src 'none'; style-src 'unsafe-inline'; sandbox"}

func (s *Server) brandLogo(w http.ResponseWriter, r *http.Request) {
	b := s.brand.Load()
	if b == nil || b.logo == nil {
		http.NotFound(w, r)
		return
	}
	w.Header()["Content-Security-Policy"] = hdrImageCSP
	b.logo.serve(w, r)
}

func (s *Server) brandCSS(w http.ResponseWriter, r *http.Request) {
	b := s.brand.Load()
	if b == nil || b.css == nil {
		http.NotFound(w, r)
		return
	}
	b.css.serve(w, r)
}

// favicon is /favicon.ico: a 32×32 green dot, drawn once.
var favicon = sync.OnceValue(func() *doc {
	const n = 32
	img := image.NewNRGBA(image.Rect(0, 0, n, n))
	green := color.NRGBA{0x2e, 0x7d, 0x32, 0xff}
	for y := range n {
		for x := range n {
			// coverage of the pixel by a circle of radius 14, for a soft edge
			d := math.Hypot(float64(x)+0.5-n/2, float64(y)+0.5-n/2)
			a := math.Max(0, math.Min(1, 14.5-d))
			if a > 0 {
				c := green
				c.A = uint8(a * 255)
				img.SetNRGBA(x, y, c)
			}
		}
	}
	var p bytes.Buffer
	_ = png.Encode(&p, img)
	// An ICO file holding one PNG image.
	var b bytes.Buffer
	_ = binary.Write(&b, binary.LittleEndian, [3]uint16{0, 1, 1}) // reserved, type icon, one image
	b.Write([]byte{n, n, 0, 0})                                   // width, height, no palette, reserved
	_ = binary.Write(&b, binary.LittleEndian, [2]uint16{1, 32})   // planes, bits per pixel
	_ = binary.Write(&b, binary.LittleEndian, [2]uint32{uint32(p.Len()), 22})
	b.Write(p.Bytes())
	return newDoc(b.Bytes(), "image/x-icon", "public, max-age=604800", time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), nil)
})

func (s *Server) favicon(w http.ResponseWriter, r *http.Request) { favicon().serve(w, r) }
