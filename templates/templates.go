// Package templates holds the web UI's HTML templates and its style sheet,
// embedded in the binary. The pages use no scripts at all: everything is a
// link or a form, so the Content-Security-Policy can forbid scripts outright.
package templates

import (
	"embed"
	"html/template"
	"io/fs"
)

//go:embed *.html static
var files embed.FS

// Static is the style sheet and other static files, served under /static/.
func Static() fs.FS {
	sub, _ := fs.Sub(files, "static")
	return sub
}

// Pages parses every page with the layout: the result maps a page name
// ("search", "message", ...) to a template whose "layout" renders it.
func Pages(funcs template.FuncMap) (map[string]*template.Template, error) {
	pages := map[string]*template.Template{}
	for _, name := range []string{"login", "search", "message", "status", "error", "holds", "audit", "retention"} {
		t, err := template.New(name).Funcs(funcs).ParseFS(files, "layout.html", name+".html")
		if err != nil {
			return nil, err
		}
		pages[name] = t
	}
	return pages, nil
}
