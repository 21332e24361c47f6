package statuspage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vantage-dev/vantage/mesh"
	"github.com/vantage-dev/vantage/store"
	"github.com/vantage-dev/vantage/subscribe"
)

// Subscriptions (statuspage.subscriptions):
//
//	GET  /subscribe             the form (also shown in the page's footer)
//	POST /subscribe             email=ADDRESS: a confirmation mail is sent
//	GET  /subscribe/confirm     the confirmation link: a button that POSTs it
//	POST /subscribe/confirm     confirms: the address is subscribed
//	GET  /unsubscribe           the unsubscribe link: a button that POSTs it
//	POST /unsubscribe           RFC 8058 one-click: unsubscribes at once
//	POST   /api/v1/subscribers       (token) add a webhook or an address
//	GET    /api/v1/subscribers       (token) list them
//	DELETE /api/v1/subscribers/{id}  (token) remove one
//
// The pages work without JavaScript and speak the page's language. The
// form's answer is the same whether the address is subscribed or not, so
// nobody learns who is; POST /subscribe is limited per client address
// (SubscribeLimits) and in all, and its body to maxSubscribeBody bytes.
// Links are signed (package subscribe); a confirmation link takes a
// button press, so a mail scanner that opens links does not subscribe
// anyone. Without Subscriptions (SetSubscriptions) every one answers 404.

// Subscriptions takes subscriptions: a *subscribe.Service.
type Subscriptions interface {
	MailEnabled() bool
	Request(ctx context.Context, email string) error
	Confirm(ctx context.Context, q url.Values) (mesh.Subscriber, error)
	Unsubscribe(ctx context.Context, q url.Values) error
	UnsubscribeURL(id string) string
	AddEmail(ctx context.Context, email string) (mesh.Subscriber, error)
	AddWebhook(ctx context.Context, url, secret string) (mesh.Subscriber, error)
	Remove(ctx context.Context, id string) (bool, error)
	List() []mesh.Subscriber
}

var _ Subscriptions = (*subscribe.Service)(nil)

// SubscribeLimits bound POST /subscribe: per client address (its /64 for
// IPv6) PerClient a minute with a burst of ClientBurst, and in all PerMinute
// a minute with a burst of Burst.
var SubscribeLimits = struct {
	PerClient, ClientBurst, PerMinute, Burst float64
}{PerClient: 1, ClientBurst: 5, PerMinute: 10, Burst: 30}

// maxSubscribeBody bounds the form's body.
const maxSubscribeBody = 4 << 10

// subsState is the server's subscriptions and the form's limits.
type subsState struct {
	s      Subscriptions
	client *limiter
	all    *limiter
}

// SetSubscriptions turns the subscription pages and API on (nil: off).
func (s *Server) SetSubscriptions(sub Subscriptions) {
	if sub == nil {
		s.subs.Store(nil)
		return
	}
	l := SubscribeLimits
	s.subs.Store(&subsState{s: sub,
		client: newLimiter(HistoryLimits{PerSecond: l.PerClient / 60, Burst: int(l.ClientBurst), Clients: 10000}, s.opts.Now),
		all:    newLimiter(HistoryLimits{PerSecond: l.PerMinute / 60, Burst: int(l.Burst), Clients: 1}, s.opts.Now)})
}

func (s *Server) registerSubscriptions() {
	s.mux.HandleFunc("GET /subscribe", s.subscribeForm)
	s.mux.HandleFunc("POST /subscribe", s.subscribePost)
	s.mux.HandleFunc("GET /subscribe/confirm", s.confirmForm)
	s.mux.HandleFunc("POST /subscribe/confirm", s.confirmPost)
	s.mux.HandleFunc("GET /unsubscribe", s.unsubscribeForm)
	s.mux.HandleFunc("POST /unsubscribe", s.unsubscribePost)
	s.mux.HandleFunc("GET /api/v1/subscribers", s.listSubscribers)
	s.mux.HandleFunc("POST /api/v1/subscribers", s.postSubscriber)
	s.mux.HandleFunc("DELETE /api/v1/subscribers/{id}", s.deleteSubscriber)
}

var hdrFormCSP = []string{"default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"}

// subsPage is what the subscription pages show.
type subsPage struct {
	Lang, Title, Site, Heading, Text, Error string
	Form                                    string // "subscribe", "confirm", "unsubscribe" or ""
	Action                                  string // the form's action (with the link's query)
	Button, Label                           string
	Email                                   string
	Unsubscribe                             string // a link to unsubscribe
	UnsubscribeText                         string
	Back, Asset                             string
}

var subsTmpl = template.Must(template.New("subs").Parse(`<!doctype html>
<html lang="{{.Lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{.Title}}</title>
<link rel="stylesheet" href="/assets/style.css?v={{.Asset}}">
</head>
<body>
<main id="main" class="wrap">
<h1>{{.Heading}}</h1>
{{if .Text}}<p>{{.Text}}</p>{{end}}
{{if .Error}}<p class="notice" role="alert">{{.Error}}</p>{{end}}
{{if eq .Form "subscribe"}}<form method="post" action="/subscribe" class="subscribe">
<label for="sub-email">{{.Label}}</label>
<input id="sub-email" type="email" name="email" value="{{.Email}}" required maxlength="254" autocomplete="email">
<button type="submit">{{.Button}}</button>
</form>{{else if .Form}}<form method="post" action="{{.Action}}"><button type="submit">{{.Button}}</button></form>{{end}}
{{if .Unsubscribe}}<p><a href="{{.Unsubscribe}}">{{.UnsubscribeText}}</a></p>{{end}}
<p><a href="/">{{.Back}}</a></p>
</main>
</body>
</html>
`))

// subsKO are the subscription pages' strings in Korean (English is the
// key, as in i18n.go).
var subsKO = map[string]string{
	"Subscribe to %s": "%s 구독",
	"Get an email when an incident starts, is updated and is resolved.": "장애가 시작되고, 업데이트되고, 해결될 때 이메일을 받습니다.",
	"Email address":    "이메일 주소",
	"Subscribe":        "구독",
	"Check your inbox": "메일함을 확인하세요",
	"If this address can be subscribed, a mail with a confirmation link is on its way. The link is valid for a limited time.": "이 주소로 구독할 수 있다면 확인 링크가 담긴 메일이 발송됩니다. 링크는 일정 시간 동안만 유효합니다.",
	"That is not an email address.":                 "올바른 이메일 주소가 아닙니다.",
	"Too many requests: try again in %d seconds.":   "요청이 너무 많습니다. %d초 후에 다시 시도하세요.",
	"Confirm your subscription":                     "구독 확인",
	"Press the button to get incident mails at %s.": "%s(으)로 장애 메일을 받으려면 버튼을 누르세요.",
	"Confirm":                              "확인",
	"You are subscribed":                   "구독되었습니다",
	"Incident mails will go to %s.":        "장애 메일이 %s(으)로 발송됩니다.",
	"Unsubscribe":                          "구독 해지",
	"This link is invalid or has expired.": "링크가 올바르지 않거나 만료되었습니다.",
	"Unsubscribe from %s":                  "%s 구독 해지",
	"Press the button to stop getting incident mails.":          "장애 메일을 그만 받으려면 버튼을 누르세요.",
	"You are unsubscribed":                                      "구독이 해지되었습니다",
	"You will get no more incident mails.":                      "더 이상 장애 메일을 받지 않습니다.",
	"Back to the status page":                                   "상태 페이지로 돌아가기",
	"Something went wrong: try again later.":                    "문제가 발생했습니다. 잠시 후 다시 시도하세요.",
	"Subscriptions are full: no more subscribers can be added.": "구독자가 가득 찼습니다. 더 이상 추가할 수 없습니다.",
}

// subsT translates s into the page's language.
func (s *Server) subsT(str string, args ...any) string {
	if p := s.page.Load(); p != nil && p.Site.Locale == localeKO {
		if k, ok := subsKO[str]; ok {
			str = k
		}
	}
	if len(args) > 0 {
		return fmt.Sprintf(str, args...)
	}
	return str
}

func (s *Server) subsRender(w http.ResponseWriter, code int, p subsPage) {
	site := "Status"
	if pg := s.page.Load(); pg != nil && pg.Title != "" {
		site = pg.Title
	}
	p.Lang, p.Site, p.Asset = localeEN, site, s.assetV
	if pg := s.page.Load(); pg != nil && pg.Site.Locale == localeKO {
		p.Lang = localeKO
	}
	p.Title = p.Heading + " · " + site
	p.Back = s.subsT("Back to the status page")
	h := w.Header()
	h["Content-Security-Policy"] = hdrFormCSP
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = subsTmpl.Execute(w, p)
}

// subsOn returns the subscriptions, or answers 404.
func (s *Server) subsOn(w http.ResponseWriter, mail bool) (*subsState, bool) {
	st := s.subs.Load()
	if st == nil || (mail && !st.s.MailEnabled()) {
		http.Error(w, "subscriptions are not enabled on this page", http.StatusNotFound)
		return nil, false
	}
	return st, true
}

func (s *Server) subscribePage(email, errText string) subsPage {
	site := "Status"
	if pg := s.page.Load(); pg != nil && pg.Title != "" {
		site = pg.Title
	}
	return subsPage{Heading: s.subsT("Subscribe to %s", site), Text: s.subsT("Get an email when an incident starts, is updated and is resolved."),
		Form: "subscribe", Label: s.subsT("Email address"), Button: s.subsT("Subscribe"), Email: email, Error: errText}
}

func (s *Server) subscribeForm(w http.ResponseWriter, _ *http.Request) {
	if _, ok := s.subsOn(w, true); !ok {
		return
	}
	s.subsRender(w, http.StatusOK, s.subscribePage("", ""))
}

// readForm reads a form body of at most maxSubscribeBody bytes.
func readForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxSubscribeBody)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("request body over %d bytes", maxSubscribeBody), http.StatusRequestEntityTooLarge)
		} else {
			http.Error(w, "bad form", http.StatusBadRequest)
		}
		return false
	}
	return true
}

func (s *Server) subscribePost(w http.ResponseWriter, r *http.Request) {
	st, ok := s.subsOn(w, true)
	if !ok {
		return
	}
	ok1, wait1 := st.client.allow(clientOf(r))
	ok2, wait2 := true, time.Duration(0)
	if ok1 {
		ok2, wait2 = st.all.allow(netip.Prefix{})
	}
	if !ok1 || !ok2 {
		secs := max(1, int(math.Ceil(max(wait1, wait2).Seconds())))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		s.subsRender(w, http.StatusTooManyRequests, s.subscribePage("", s.subsT("Too many requests: try again in %d seconds.", secs)))
		return
	}
	if !readForm(w, r) {
		return
	}
	email := strings.TrimSpace(r.PostForm.Get("email"))
	err := st.s.Request(r.Context(), email)
	switch {
	case errors.Is(err, subscribe.ErrInvalid):
		s.subsRender(w, http.StatusBadRequest, s.subscribePage(email, s.subsT("That is not an email address.")))
	case err != nil:
		s.opts.Logger.Error("statuspage: subscription request", "err", err)
		s.subsRender(w, http.StatusServiceUnavailable, s.subscribePage(email, s.subsT("Something went wrong: try again later.")))
	default:
		s.subsRender(w, http.StatusOK, subsPage{Heading: s.subsT("Check your inbox"),
			Text: s.subsT("If this address can be subscribed, a mail with a confirmation link is on its way. The link is valid for a limited time.")})
	}
}

func (s *Server) badLink(w http.ResponseWriter) {
	s.subsRender(w, http.StatusBadRequest, subsPage{Heading: s.subsT("This link is invalid or has expired.")})
}

func (s *Server) confirmForm(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.subsOn(w, true); !ok {
		return
	}
	q := r.URL.Query()
	email := ""
	if e, err := subscribe.DecodeConfirmEmail(q); err == nil {
		email = e
	}
	s.subsRender(w, http.StatusOK, subsPage{Heading: s.subsT("Confirm your subscription"),
		Text: s.subsT("Press the button to get incident mails at %s.", email), Form: "confirm",
		Action: "/subscribe/confirm?" + q.Encode(), Button: s.subsT("Confirm")})
}

func (s *Server) confirmPost(w http.ResponseWriter, r *http.Request) {
	st, ok := s.subsOn(w, true)
	if !ok || !readForm(w, r) {
		return
	}
	sub, err := st.s.Confirm(r.Context(), r.URL.Query())
	switch {
	case errors.Is(err, subscribe.ErrBadLink):
		s.badLink(w)
	case errors.Is(err, store.ErrConflict):
		s.subsRender(w, http.StatusConflict, subsPage{Heading: s.subsT("Subscriptions are full: no more subscribers can be added.")})
	case err != nil:
		s.opts.Logger.Error("statuspage: confirm subscription", "err", err)
		s.subsRender(w, http.StatusServiceUnavailable, subsPage{Heading: s.subsT("Something went wrong: try again later.")})
	default:
		s.subsRender(w, http.StatusOK, subsPage{Heading: s.subsT("You are subscribed"),
			Text: s.subsT("Incident mails will go to %s.", sub.Email), Unsubscribe: st.s.UnsubscribeURL(sub.ID),
			UnsubscribeText: s.subsT("Unsubscribe")})
	}
}

func (s *Server) unsubscribeForm(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.subsOn(w, false); !ok {
		return
	}
	site := "Status"
	if pg := s.page.Load(); pg != nil && pg.Title != "" {
		site = pg.Title
	}
	s.subsRender(w, http.StatusOK, subsPage{Heading: s.subsT("Unsubscribe from %s", site),
		Text: s.subsT("Press the button to stop getting incident mails."), Form: "unsubscribe",
		Action: "/unsubscribe?" + r.URL.Query().Encode(), Button: s.subsT("Unsubscribe")})
}

// unsubscribePost is RFC 8058's one-click unsubscription: the link's query
// names and signs the subscriber; the body (List-Unsubscribe=One-Click)
// is read and not needed.
func (s *Server) unsubscribePost(w http.ResponseWriter, r *http.Request) {
	st, ok := s.subsOn(w, false)
	if !ok || !readForm(w, r) {
		return
	}
	err := st.s.Unsubscribe(r.Context(), r.URL.Query())
	switch {
	case errors.Is(err, subscribe.ErrBadLink):
		s.badLink(w)
	case err != nil:
		s.opts.Logger.Error("statuspage: unsubscribe", "err", err)
		s.subsRender(w, http.StatusServiceUnavailable, subsPage{Heading: s.subsT("Something went wrong: try again later.")})
	default:
		s.subsRender(w, http.StatusOK, subsPage{Heading: s.subsT("You are unsubscribed"), Text: s.subsT("You will get no more incident mails.")})
	}
}

// SubscriberRequest is the body of POST /api/v1/subscribers: a webhook
// (url, and secret: one is made when it is empty) or an email address
// (subscribed without confirmation: the operator vouches for it).
type SubscriberRequest struct {
	URL    string `json:"url,omitempty"`
	Secret string `json:"secret,omitempty"`
	Email  string `json:"email,omitempty"`
}

// SubscriberJSON is one subscriber in the API.
type SubscriberJSON struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"` // email or webhook
	Email     string    `json:"email,omitempty"`
	URL       string    `json:"url,omitempty"`
	Secret    string    `json:"secret,omitempty"` // only in the answer to POST
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"` // the node that took it
}

// SubscribersJSON is GET /api/v1/subscribers.
type SubscribersJSON struct {
	Subscribers []SubscriberJSON `json:"subscribers"`
}

func subscriberJSON(v mesh.Subscriber) SubscriberJSON {
	j := SubscriberJSON{ID: v.ID, Type: "email", Email: v.Email, URL: v.URL, CreatedAt: v.Created, CreatedBy: v.Author}
	if v.URL != "" {
		j.Type = "webhook"
	}
	return j
}

func (s *Server) subsAPI(w http.ResponseWriter, r *http.Request) (*subsState, bool) {
	if !s.authorizeToken(w, r) {
		return nil, false
	}
	st := s.subs.Load()
	if st == nil {
		writeErr(w, http.StatusNotFound, "subscriptions are not enabled (statuspage.subscriptions.enabled)")
		return nil, false
	}
	return st, true
}

func (s *Server) listSubscribers(w http.ResponseWriter, r *http.Request) {
	st, ok := s.subsAPI(w, r)
	if !ok {
		return
	}
	out := SubscribersJSON{Subscribers: []SubscriberJSON{}}
	for _, v := range st.s.List() {
		out.Subscribers = append(out.Subscribers, subscriberJSON(v))
	}
	writeJSON(w, r, out, s.opts.Logger)
}

func (s *Server) postSubscriber(w http.ResponseWriter, r *http.Request) {
	st, ok := s.subsAPI(w, r)
	if !ok {
		return
	}
	var req SubscriberRequest
	if !decode(w, r, &req) {
		return
	}
	var (
		v   mesh.Subscriber
		err error
	)
	switch {
	case (req.URL == "") == (req.Email == ""):
		writeErr(w, http.StatusBadRequest, "give url (a webhook, with an optional secret) or email")
		return
	case req.URL != "":
		v, err = st.s.AddWebhook(r.Context(), req.URL, req.Secret)
	default:
		if req.Secret != "" {
			writeErr(w, http.StatusBadRequest, "secret goes with a webhook's url, not with email")
			return
		}
		v, err = st.s.AddEmail(r.Context(), req.Email)
	}
	switch {
	case errors.Is(err, subscribe.ErrInvalid):
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	case errors.Is(err, store.ErrConflict):
		writeErr(w, http.StatusConflict, err.Error())
		return
	case err != nil:
		s.opts.Logger.Error("statuspage: add subscriber", "err", err)
		writeErr(w, http.StatusInternalServerError, "could not add the subscriber")
		return
	}
	j := subscriberJSON(v)
	j.Secret = v.Secret
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", "/api/v1/subscribers/"+v.ID)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	b, _ := json.MarshalIndent(j, "", "  ")
	_, _ = w.Write(append(b, '\n'))
}

func (s *Server) deleteSubscriber(w http.ResponseWriter, r *http.Request) {
	st, ok := s.subsAPI(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	removed, err := st.s.Remove(r.Context(), id)
	switch {
	case err != nil:
		s.opts.Logger.Error("statuspage: remove subscriber", "err", err)
		writeErr(w, http.StatusInternalServerError, "could not remove the subscriber")
	case !removed:
		writeErr(w, http.StatusNotFound, "no such subscriber: "+id)
	default:
		writeJSON(w, r, map[string]string{"id": id, "status": "removed"}, s.opts.Logger)
	}
}
