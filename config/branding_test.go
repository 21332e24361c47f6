package config

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writePNG(t *testing.T, path string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewRGBA(image.Rect(0, 0, 4, 4))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestStatusPageBranding(t *testing.T) {
	dir := t.TempDir()
	data := writePNG(t, filepath.Join(dir, "logo.png"))
	if err := os.WriteFile(filepath.Join(dir, "mark.svg"), []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "vantage.yaml")
	c := mustParse(t, cfgPath, y(`
statuspage:
  logo: logo.png
  links:
    - {name: Home, url: "https://example.com/"}
    - {name: " 도움말 ", url: /help}
  custom_css: |
    .banner { border-radius: 0 }
`), env(nil))
	sp := c.StatusPage.Branding
	if sp.Logo != filepath.Join(dir, "logo.png") || !bytes.Equal(sp.LogoData, data) || sp.LogoType != "image/png" {
		t.Errorf("logo %q %d bytes %q", sp.Logo, len(sp.LogoData), sp.LogoType)
	}
	if len(sp.Links) != 2 || sp.Links[0] != (StatusPageLink{"Home", "https://example.com/"}) || sp.Links[1] != (StatusPageLink{"도움말", "/help"}) {
		t.Errorf("links %+v", sp.Links)
	}
	if sp.CustomCSS != ".banner { border-radius: 0 }\n" {
		t.Errorf("custom_css %q", sp.CustomCSS)
	}
	c = mustParse(t, cfgPath, y("statuspage: {logo: "+filepath.Join(dir, "mark.svg")+"}\n"), env(nil))
	if c.StatusPage.Branding.LogoType != "image/svg+xml" {
		t.Errorf("svg logo %+v", c.StatusPage.Branding)
	}
	c = mustParse(t, cfgPath, y("statuspage: {title: T}\n"), env(nil))
	if c.StatusPage.Branding != nil {
		t.Errorf("branding without keys: %+v", c.StatusPage)
	}
}

func TestStatusPageBrandingErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "big.png"), make([]byte, MaxLogoBytes+1), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "t.yaml")
	doc := `
statuspage:
  logo: missing.png
  links:
    - {name: "", url: "https://a.example.com"}
    - {name: Docs, url: "ftp://docs.example.com"}
    - {url: /x}
    - {name: Status, url: //evil.example.com/, extra: 1}
    - plain
  custom_css: ` + strings.Repeat("a", MaxCustomCSS+1) + `
`
	_, err := Parse(cfg, y(doc), env(nil))
	checkErrors(t, err, []string{
		cfg + `:2:3: logo cannot be read: open ` + filepath.Join(dir, "missing.png") + `: no such file or directory`,
		cfg + `:4:8: link name is empty`,
		cfg + `:5:20: link url must be an http:// or https:// URL (or a path such as /about)`,
		cfg + `:6:7: link needs a name`,
		cfg + `:7:22: link url must be an http:// or https:// URL (or a path such as /about)`,
		cfg + `:7:48: unknown key "extra" in link`,
		cfg + `:8:7: link must be a mapping, got "plain"`,
		cfg + `:9:3: custom_css is 65537 bytes, at most 65536 allowed`,
	})
	_, err = Parse(cfg, y("statuspage:\n  logo: notes.txt\n"), env(nil))
	checkErrors(t, err, []string{cfg + ":2:3: logo " + filepath.Join(dir, "notes.txt") + " is not a PNG, JPEG, GIF, WebP, SVG or ICO image"})
	_, err = Parse(cfg, y("statuspage:\n  logo: big.png\n"), env(nil))
	checkErrors(t, err, []string{cfg + ":2:3: logo " + filepath.Join(dir, "big.png") + " is 524289 bytes, at most 524288 allowed"})
	_, err = Parse(cfg, y("statuspage:\n  links: ["+strings.Repeat("{name: a, url: /a}, ", MaxLinks+1)+"]\n"), env(nil))
	checkErrors(t, err, []string{cfg + ":2:3: links has 11 entries, at most 10 allowed"})
}
