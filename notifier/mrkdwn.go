package notifier

import (
	"net/url"
	"strings"
)

// mrkdwnEscaper escapes what Slack reads as markup in mrkdwn text: "&", "<"
// and ">" (Slack's documented escaping). Escaped, "<!channel>" pings no one
// and "<https://x|text>" is no link.
var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// Mrkdwn escapes an outside string (tenant, job, run id, error, summary,
// names) for Slack mrkdwn text.
func Mrkdwn(s string) string { return mrkdwnEscaper.Replace(s) }

// MrkdwnCode escapes s for a `code span`: a backtick of its own would end
// the span early, so it becomes a look-alike.
func MrkdwnCode(s string) string { return Mrkdwn(strings.ReplaceAll(s, "`", "ˋ")) }

// MrkdwnLink is a link of ours, <url|text>, with text escaped; a URL that is
// not http(s) with a host gives the text alone, unlinked.
func MrkdwnLink(raw, text string) string {
	u, ok := WebURL(raw)
	if !ok {
		return Mrkdwn(text)
	}
	// "|" and ">" would end the URL part; Slack decodes the entities.
	href := strings.NewReplacer("|", "%7C", " ", "%20").Replace(u.String())
	return "<" + Mrkdwn(href) + "|" + Mrkdwn(text) + ">"
}

// WebURL parses raw and reports whether it is an absolute http(s) URL with a
// host, the only links etlhub puts in a message.
func WebURL(raw string) (*url.URL, bool) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, false
	}
	if strings.ContainsAny(raw, "|<> \t\r\n") {
		return nil, false
	}
	return u, true
}

// ClipMrkdwn is Clip for escaped text: it does not leave half an entity
// ("&am") at the cut.
func ClipMrkdwn(s string, n int) string {
	if len(s) <= n {
		return s
	}
	c := Clip(s, n)
	cut := strings.TrimSuffix(c, "...")
	if i := strings.LastIndexByte(cut, '&'); i >= 0 && !strings.Contains(cut[i:], ";") {
		return cut[:i] + "..."
	}
	return c
}
