package config

import (
	"strings"
	"testing"
)

// TestPagerDutySeverityDefault: a PagerDuty notifier without severity
// keeps none, so the check's own severity reaches PagerDuty; an explicit
// one is kept.
func TestPagerDutySeverityDefault(t *testing.T) {
	c := mustParse(t, "t.yaml", y(`
notifiers:
  - {name: pd, type: pagerduty, routing_key: k}
  - {name: pd-warn, type: pagerduty, routing_key: k, severity: warning}
checks:
  - {name: a, type: tcp, target: "a:1", severity: warning, notify: [pd]}
`), nil)
	if s := c.NotifierByName("pd").Severity; s != "" {
		t.Errorf("pd severity = %q, want empty (the check's)", s)
	}
	if s := c.NotifierByName("pd-warn").Severity; s != "warning" {
		t.Errorf("pd-warn severity = %q, want warning", s)
	}
	if s := c.CheckByName("a").Severity; s != "warning" {
		t.Errorf("check severity = %q", s)
	}
}

func TestEmailAuthKeys(t *testing.T) {
	c := mustParse(t, "t.yaml", y(`
notifiers:
  - {name: auto, type: email, smtp: "mail:587", from: a@b.c, to: [c@d.e], username: u, password: p}
  - {name: anon, type: email, smtp: "mail:25", tls: none, from: a@b.c, to: [c@d.e]}
  - {name: plain, type: email, smtp: "mail:587", from: a@b.c, to: [c@d.e], username: u, password: p, auth: plain}
  - {name: login, type: email, smtp: "mail:465", tls: implicit, from: a@b.c, to: [c@d.e], username: u, password: p, auth: login}
  - {name: cram, type: email, smtp: "mail:587", from: a@b.c, to: [c@d.e], username: u, password: p, auth: cram-md5}
  - {name: oauth, type: email, smtp: "smtp.gmail.com:587", from: a@b.c, to: [c@d.e], username: a@b.c, oauth_token: "${TOKEN}"}
  - {name: none, type: email, smtp: "mail:25", from: a@b.c, to: [c@d.e], auth: none}
`), env(map[string]string{"TOKEN": "ya29.tok"}))
	for name, want := range map[string]string{"auto": "", "anon": "", "plain": "plain", "login": "login",
		"cram": "cram-md5", "oauth": "xoauth2", "none": "none"} {
		if got := c.NotifierByName(name).Auth; got != want {
			t.Errorf("%s: auth %q, want %q", name, got, want)
		}
	}
	if n := c.NotifierByName("oauth"); n.OAuthToken != "ya29.tok" || n.Username != "a@b.c" || n.Password != "" {
		t.Errorf("oauth = %+v", *n)
	}
}

func TestTwilioKeys(t *testing.T) {
	c := mustParse(t, "t.yaml", y(`
notifiers:
  - name: sms
    type: twilio
    account_sid: AC0123456789abcdef0123456789abcdef
    auth_token: tok
    from: "+15005550006"
    to: ["+821012345678", "+15005550001"]
  - name: call
    type: twilio
    account_sid: AC0123456789abcdef0123456789abcdef
    auth_token: tok
    from: "+15005550006"
    to: ["+821012345678"]
    voice: true
    url: http://127.0.0.1:9/
  - name: svc
    type: twilio
    account_sid: AC0123456789abcdef0123456789abcdef
    auth_token: tok
    from: MG0123456789abcdef0123456789abcdef
    to: ["+15005550001"]
`), nil)
	sms := c.NotifierByName("sms")
	if sms.URL != DefaultTwilioURL || sms.Voice || sms.AccountSID != "AC0123456789abcdef0123456789abcdef" ||
		sms.AuthToken != "tok" || sms.From != "+15005550006" || strings.Join(sms.To, ",") != "+821012345678,+15005550001" {
		t.Errorf("sms = %+v", *sms)
	}
	if call := c.NotifierByName("call"); !call.Voice || call.URL != "http://127.0.0.1:9/" {
		t.Errorf("call = %+v", *call)
	}
	if svc := c.NotifierByName("svc"); svc.From != "MG0123456789abcdef0123456789abcdef" {
		t.Errorf("svc = %+v", *svc)
	}
}

func TestSMSHTTPKeys(t *testing.T) {
	c := mustParse(t, "t.yaml", y(`
notifiers:
  - name: nhn
    type: sms_http
    url: https://api-sms.cloud.toast.com/sms/v3.0/appKeys/${APP_KEY}/sender/mms
    headers: {X-Secret-Key: "${SECRET}"}
    from: "0212345678"
    to: ["01012345678"]
    body: '{"title": {{json (truncate 20 .Name)}}, "body": {{json .Message}}, "sendNo": {{json .From}}, "recipientList": [{{range $i, $n := .To}}{{if $i}}, {{end}}{"recipientNo": {{json $n}}}{{end}}]}'
    success_match: '"isSuccessful"\s*:\s*true'
  - name: plain
    type: sms_http
    url: http://127.0.0.1:9/send
    to: ["+15005550001"]
  - name: get
    type: sms_http
    method: get
    url: 'https://gw.example.com/send?to={{urlquery (join .To ",")}}&text={{urlquery .Message}}'
    to: ["+15005550001"]
`), env(map[string]string{"APP_KEY": "app", "SECRET": "sec"}))
	nhn := c.NotifierByName("nhn")
	if nhn.Method != "POST" || nhn.ContentType != DefaultSMSContentType || nhn.Headers["X-Secret-Key"] != "sec" ||
		nhn.URL != "https://api-sms.cloud.toast.com/sms/v3.0/appKeys/app/sender/mms" || nhn.SuccessMatch == nil ||
		!strings.HasPrefix(nhn.Body, `{"title"`) || nhn.From != "0212345678" {
		t.Errorf("nhn = %+v", *nhn)
	}
	if p := c.NotifierByName("plain"); p.Body != DefaultSMSBody || p.Method != "POST" {
		t.Errorf("plain = %+v", *p)
	}
	if g := c.NotifierByName("get"); g.Method != "GET" || g.Body != "" || g.ContentType != "" {
		t.Errorf("get = %+v", *g)
	}
}

func TestNotifierChannelErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want []string
	}{
		{"email auth", `
notifiers:
  - {name: a, type: email, smtp: "m:25", from: a@b.c, to: [c@d.e], auth: gssapi}
  - {name: b, type: email, smtp: "m:25", from: a@b.c, to: [c@d.e], auth: plain}
  - {name: c, type: email, smtp: "m:25", from: a@b.c, to: [c@d.e], auth: xoauth2, password: p}
  - {name: d, type: email, smtp: "m:25", from: a@b.c, to: [c@d.e], auth: none, username: u}
  - {name: e, type: email, smtp: "m:25", from: a@b.c, to: [c@d.e], username: u}
  - {name: f, type: email, smtp: "m:25", from: a@b.c, to: [c@d.e], auth: login, username: u, password: p, oauth_token: t}
  - {name: g, type: slack, url: "https://x", auth: plain}
  - {name: h, type: email, smtp: "m:25", tls: none, from: a@b.c, to: [c@d.e], auth: login, username: u, password: p}
  - {name: i, type: email, smtp: "127.0.0.1:25", tls: none, from: a@b.c, to: [c@d.e], auth: plain, username: u, password: p}
`, []string{
			`t.yaml:2:68: auth must be plain, login, cram-md5, xoauth2 or none, got "gssapi"`,
			"t.yaml:3:68: auth: plain needs username and password",
			"t.yaml:4:68: auth: xoauth2 needs oauth_token (an OAuth 2 access token)",
			"t.yaml:4:68: auth: xoauth2 needs username (the mailbox the token is for)",
			"t.yaml:4:83: password does not apply with auth: xoauth2 (the token is oauth_token)",
			"t.yaml:5:68: auth: none sends no credentials; remove username, password and oauth_token",
			`t.yaml:6:68: notifier "e" has a username but no password`,
			"t.yaml:7:107: oauth_token applies only with auth: xoauth2, not login",
			`t.yaml:8:46: key "auth" does not apply to slack notifiers`,
			"t.yaml:9:79: auth: login would send the credentials in clear text with tls: none; use tls: starttls or implicit"}},
		{"twilio", `
notifiers:
  - {name: t, type: twilio}
  - name: u
    type: twilio
    account_sid: SK123
    auth_token: x
    from: "015005550006"
    to: ["+15005550001", "010-1234-5678", ""]
  - {name: v, type: twilio, account_sid: AC1, auth_token: x, from: MG1, to: ["+15005550001"], voice: yes please}
  - {name: w, type: twilio, account_sid: AC1, auth_token: x, from: MG1, to: ["+15005550001"], voice: true}
  - {name: x, type: twilio, account_sid: AC1, auth_token: x, from: "+15005550006", to: [], smtp: "a:1"}
`, []string{
			`t.yaml:2:5: twilio notifier "t" needs account_sid`,
			`t.yaml:2:5: twilio notifier "t" needs auth_token`,
			`t.yaml:2:5: twilio notifier "t" needs from`,
			`t.yaml:2:5: twilio notifier "t" needs to: at least one phone number`,
			"t.yaml:5:5: account_sid must be a Twilio account SID (AC followed by letters and digits)",
			`t.yaml:7:5: from must be a phone number in E.164 form such as +15005550006 or a Messaging Service SID (MG...), got "015005550006"`,
			`t.yaml:8:26: "010-1234-5678" is not a phone number in E.164 form such as +821012345678`,
			"t.yaml:8:43: to entries must not be empty",
			`t.yaml:9:102: voice must be true or false, got "yes please"`,
			`t.yaml:10:62: from must be a phone number in E.164 form such as +15005550006, got "MG1"`,
			"t.yaml:11:84: to must list at least one phone number",
			`t.yaml:11:92: key "smtp" does not apply to twilio notifiers`}},
		{"sms_http", `
notifiers:
  - {name: a, type: sms_http}
  - {name: b, type: sms_http, url: "ftp://x", to: [x], method: DELETE, content_type: "a b"}
  - {name: c, type: sms_http, url: "https://x/{{.Nope}}", to: [x], body: "{{.Mesage}}", success_match: "(", headers: {X-Sig: "{{hmacSHA256 .Timestamp}}"}}
  - {name: d, type: sms_http, url: "https://x/", to: [x], body: "{{json .Message", method: GET}
  - {name: e, type: sms_http, url: "https://x/", to: [x], body: "{{shout .Message}}"}
`, []string{
			`t.yaml:2:5: sms_http notifier "a" needs url`,
			`t.yaml:2:5: sms_http notifier "a" needs to: at least one phone number`,
			"t.yaml:3:31: url must be an http:// or https:// URL",
			`t.yaml:3:56: method must be POST, PUT, PATCH or GET, got "DELETE"`,
			`t.yaml:3:72: content_type "a b" is not a media type such as application/json`,
			`t.yaml:4:31: url: template: url:1:12: executing "url" at <.Nope>: can't evaluate field Nope in type config.SMSData`,
			`t.yaml:4:68: body: template: body:1:2: executing "body" at <.Mesage>: can't evaluate field Mesage in type config.SMSData`,
			"t.yaml:4:89: success_match is not a regular expression: error parsing regexp: missing closing ): `(`",
			`t.yaml:4:109: headers: X-Sig: template: headers.X-Sig:1:2: executing "headers.X-Sig" at <hmacSHA256>: wrong number of args for hmacSHA256: want 2 got 1`,
			"t.yaml:5:59: a GET request has no body; put the message in the url",
			`t.yaml:6:59: body: template: body:1: function "shout" not defined`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", y(tc.doc), env(nil))
			checkErrors(t, err, tc.want)
		})
	}
}

func TestSMSFuncs(t *testing.T) {
	tpl, err := ParseSMSTemplate("t", `{{json .Message}} {{digits "+82 10-1234-5678"}} {{truncate 5 "안녕하세요 세계"}} `+
		`{{base64 "a"}} {{hmacSHA256Hex "k" "m"}} {{hmacSHA256 "k" "m"}} {{join .To ";"}}`)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := tpl.Execute(&b, SMSData{Message: `say "hi"`, To: []string{"1", "2"}}); err != nil {
		t.Fatal(err)
	}
	want := `"say \"hi\"" 821012345678 안녕하세… YQ== ` +
		`b60090e3052297aeb5a080889ce2fc4bca957e756faeb4df7d31800ca1e771ec ` +
		`tgCQ4wUil661oICInOL8S8qVfnVvrrTffTGADKHncew= 1;2`
	if got := b.String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
