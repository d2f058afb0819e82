// Username templates as the database plugins render them: a small Go
// text/template (fields, pipelines, parentheses, printf) with the functions of
// sdk/helper/template/funcs.go. Enough for the default template and for the
// usual custom ones ("{{.RoleName}}-{{random 12 | lowercase}}").
import { createHash, randomUUID } from 'node:crypto'
import { base62 } from './fake-vault-util.js'

export interface UsernameMetadata {
  DisplayName: string
  RoleName: string
}

/** The Postgres plugin's default username_template. */
export const DEFAULT_USERNAME_TEMPLATE =
  '{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}'

type Value = string | number
type Token = { kind: 'str' | 'num' | 'field' | 'ident' | '(' | ')' | '|'; text: string }

const FUNCS: Record<string, (...args: Value[]) => Value> = {
  random: (n) => base62(Number(n)),
  truncate: (n, s) => String(s).slice(0, Number(n)),
  truncate_sha256: (n, s) => {
    const str = String(s)
    const max = Number(n)
    if (str.length <= max) return str
    return str.slice(0, max - 8) + createHash('sha256').update(str.slice(max - 8)).digest('hex').slice(0, 8)
  },
  lowercase: (s) => String(s).toLowerCase(),
  uppercase: (s) => String(s).toUpperCase(),
  replace: (find, repl, s) => String(s).split(String(find)).join(String(repl)),
  sha256: (s) => createHash('sha256').update(String(s)).digest('hex'),
  base64: (s) => Buffer.from(String(s)).toString('base64'),
  unix_time: () => Math.floor(Date.now() / 1000),
  unix_time_millis: () => Date.now(),
  uuid: () => randomUUID(),
  printf: (format, ...args) => {
    let i = 0
    return String(format).replace(/%[sdvq%]/g, (verb) => (verb === '%%' ? '%' : verb === '%q' ? JSON.stringify(String(args[i++] ?? '')) : String(args[i++] ?? '%!(MISSING)')))
  },
}

function tokenize(action: string): Token[] {
  const tokens: Token[] = []
  const re = /\s*(?:("(?:[^"\\]|\\.)*")|(`[^`]*`)|(-?\d+)|(\.[A-Za-z_]\w*)|([A-Za-z_]\w*)|([()|]))/y
  for (let pos = 0; pos < action.length; ) {
    re.lastIndex = pos
    const m = re.exec(action)
    if (!m) {
      if (action.slice(pos).trim() === '') break
      throw new Error(`unexpected "${action.slice(pos).trim()}" in command`)
    }
    pos = re.lastIndex
    if (m[1]) tokens.push({ kind: 'str', text: JSON.parse(m[1]) as string })
    else if (m[2]) tokens.push({ kind: 'str', text: m[2].slice(1, -1) })
    else if (m[3]) tokens.push({ kind: 'num', text: m[3] })
    else if (m[4]) tokens.push({ kind: 'field', text: m[4].slice(1) })
    else if (m[5]) tokens.push({ kind: 'ident', text: m[5] })
    else if (m[6]) tokens.push({ kind: m[6] as '(' | ')' | '|', text: m[6] })
  }
  return tokens
}

/** Evaluates tokens[pos..] as a pipeline up to a closing parenthesis or the end. */
function pipeline(tokens: Token[], pos: { i: number }, data: UsernameMetadata): Value {
  let piped: Value | undefined
  for (;;) {
    const args: Value[] = []
    let fn: string | undefined
    while (pos.i < tokens.length && tokens[pos.i]!.kind !== '|' && tokens[pos.i]!.kind !== ')') {
      const tok = tokens[pos.i++]!
      if (tok.kind === 'ident' && fn === undefined && args.length === 0) {
        if (!FUNCS[tok.text]) throw new Error(`function "${tok.text}" not defined`)
        fn = tok.text
      } else if (tok.kind === 'ident') args.push(FUNCS[tok.text]?.() ?? '')
      else if (tok.kind === 'str') args.push(tok.text)
      else if (tok.kind === 'num') args.push(Number(tok.text))
      else if (tok.kind === 'field') {
        if (!(tok.text in data)) throw new Error(`can't evaluate field ${tok.text}`)
        args.push(data[tok.text as keyof UsernameMetadata])
      } else if (tok.kind === '(') {
        args.push(pipeline(tokens, pos, data))
        if (tokens[pos.i++]?.kind !== ')') throw new Error('unclosed left paren')
      }
    }
    // In a pipeline the previous command's value is the last argument of the next.
    if (piped !== undefined) args.push(piped)
    if (fn) piped = FUNCS[fn]!(...args)
    else if (args.length === 1) piped = args[0]!
    else throw new Error("can't give argument to non-function")
    if (tokens[pos.i]?.kind !== '|') return piped
    pos.i += 1
  }
}

/** template.StringTemplate.Generate: throws with Go's wording when the template is not one. */
export function renderUsername(template: string, data: UsernameMetadata): string {
  let out = ''
  let rest = template
  for (;;) {
    const open = rest.indexOf('{{')
    if (open < 0) return out + rest
    const close = rest.indexOf('}}', open)
    if (close < 0) throw new Error('unclosed action')
    let text = rest.slice(0, open)
    let action = rest.slice(open + 2, close)
    // {{- and -}} trim the whitespace beside the action.
    if (action.startsWith('-')) {
      text = text.trimEnd()
      action = action.slice(1)
    }
    const trimAfter = action.endsWith('-')
    if (trimAfter) action = action.slice(0, -1)
    rest = rest.slice(close + 2)
    if (trimAfter) rest = rest.trimStart()
    const tokens = tokenize(action)
    if (tokens.length === 0) throw new Error('missing value for command')
    const pos = { i: 0 }
    out += text + String(pipeline(tokens, pos, data))
    if (pos.i < tokens.length) throw new Error(`unexpected ${tokens[pos.i]!.text} in operand`)
  }
}
