// Runs an actions/github-script step's script against an in-memory GitHub: the pull request's
// comments and the repository's issues, read from and written back to a JSON state file.
// Usage: node github_script_harness.js STATE.json SCRIPT.js
const fs = require('fs');
const [statePath, scriptPath] = process.argv.slice(2);
const state = JSON.parse(fs.readFileSync(statePath, 'utf8'));
let next = 1000;
const rest = {
  issues: {
    listComments: async () => ({ data: state.comments }),
    createComment: async (p) => {
      if (p.issue_number === state.pr) state.comments.push({ id: next++, body: p.body });
      else state.issue_comments.push({ issue_number: p.issue_number, body: p.body });
      return { data: {} };
    },
    updateComment: async (p) => { state.comments.find(c => c.id === p.comment_id).body = p.body; return { data: {} }; },
    listForRepo: async (p) => ({ data: state.issues.filter(i => i.state === p.state && i.labels.includes(p.labels)) }),
    create: async (p) => {
      state.issues.push({ number: next++, title: p.title, body: p.body, labels: p.labels, state: 'open' });
      return { data: {} };
    },
    update: async (p) => {
      const { owner, repo, issue_number, ...fields } = p;
      Object.assign(state.issues.find(i => i.number === issue_number), fields);
      return { data: {} };
    },
  },
};
const github = { rest, paginate: async (fn, params) => (await fn(params)).data };
const context = { repo: { owner: 'acme', repo: 'infra' }, issue: { number: state.pr } };
const core = { setFailed: (m) => { state.failed = m; }, setOutput: (k, v) => { state.outputs[k] = v; } };
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
(async () => {
  await new AsyncFunction('github', 'context', 'core', 'require', fs.readFileSync(scriptPath, 'utf8'))(
    github, context, core, require);
  fs.writeFileSync(statePath, JSON.stringify(state));
})().catch((e) => { console.error(e); process.exit(1); });
