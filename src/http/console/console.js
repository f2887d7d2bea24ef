// The moderators' console: a small single-page app over the public API.
// The admin's bearer token lives in sessionStorage (gone with the tab) and
// goes out as `Authorization`; there are no cookies, so no CSRF surface.
// Every piece of server text is put into the page with textContent, never
// as HTML. Views live in the URL's hash (#/stories?status=draft&page=2),
// so the back button, reloads and shared links work.
'use strict';

(() => {
  const TOKEN_KEY = 'storybook.console.token';
  const USER_KEY = 'storybook.console.user';
  const PAGE_SIZE = 20;
  const ACTION_LABELS = {
    report_resolved: 'Report resolved',
    report_dismissed: 'Report dismissed',
    story_unpublished: 'Story unpublished',
    story_updated: 'Story edited',
    story_deleted: 'Story deleted',
    user_role_changed: 'Role changed',
    user_deactivated: 'User deactivated',
    user_reactivated: 'User reactivated',
    user_password_reset: 'Password reset code issued',
    data_exported: 'Backup downloaded',
  };
  const STORY_ACTIONS = [
    ['none', 'Keep the story as it is'],
    ['unpublish', 'Unpublish it (back to draft)'],
    ['delete', 'Delete the story'],
  ];

  const $ = (id) => document.getElementById(id);
  let session = null; // { token, user }
  let blobUrls = []; // drawings shown on the current view
  let renderCount = 0; // a view started later wins over a slower one
  let keepFlash = false; // the next navigation keeps the message (it says why we moved)

  // --- DOM helpers ---------------------------------------------------

  // h('a', { href: '#/x', class: 'c', on: { click } }, 'text', node, null)
  function h(tag, attributes, ...children) {
    const element = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === 'on') {
        for (const [event, handler] of Object.entries(value)) element.addEventListener(event, handler);
      } else if (name === 'class') {
        element.className = value;
      } else if (value === true) {
        element.setAttribute(name, '');
      } else {
        element.setAttribute(name, String(value));
      }
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      element.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return element;
  }

  function when(iso) {
    return iso ? new Date(iso).toLocaleString() : '—';
  }

  function chip(text, kind) {
    return h('span', { class: `chip ${kind || text}` }, text);
  }

  function userLink(user) {
    if (!user) return '—';
    return h('a', { href: `#/user/${user.id}` }, user.display_name || user.username,
      user.display_name && user.display_name !== user.username ? h('span', { class: 'muted' }, ` @${user.username}`) : null);
  }

  // --- messages ------------------------------------------------------

  function flash(text, kind) {
    const box = $('flash');
    box.textContent = text;
    box.className = `message ${kind || 'ok'}`;
    box.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  }

  function describeError(error) {
    if (!(error instanceof ApiError)) return `Something went wrong: ${error.message}`;
    const fields = Object.entries(error.fields || {}).map(([field, why]) => `${field}: ${why}`);
    return fields.length ? `${error.message} (${fields.join('; ')})` : error.message;
  }

  // --- the API -------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      const detail = (body && body.error) || {};
      super(detail.message || `The server answered ${status}.`);
      this.status = status;
      this.code = detail.code;
      this.fields = detail.fields;
    }
  }

  async function api(method, path, body, token) {
    const headers = { Accept: 'application/json' };
    const bearer = token || (session && session.token);
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let response;
    try {
      response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (networkError) {
      throw new Error('the server could not be reached');
    }
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (response.status === 401 && session && !token) {
      signedOut('Your session has ended: sign in again.');
    }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  function query(params) {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value !== null && value !== undefined && value !== '') search.set(key, value);
    }
    const text = search.toString();
    return text ? `?${text}` : '';
  }

  // A drawing as the server renders it, fetched with the token (a draft's
  // drawing is not public) and shown from a blob: URL.
  async function drawingImage(drawingId, alt) {
    const image = h('img', { class: 'drawing', alt, width: 400, height: 300, 'data-drawing': drawingId });
    try {
      const response = await fetch(`/api/drawings/${drawingId}/image.png`, {
        headers: { Authorization: `Bearer ${session.token}` },
      });
      if (!response.ok) throw new Error(`status ${response.status}`);
      const url = URL.createObjectURL(await response.blob());
      blobUrls.push(url);
      image.src = url;
    } catch (error) {
      image.alt = `${alt} (could not be loaded: ${error.message})`;
    }
    return image;
  }

  // --- sign in and out -----------------------------------------------

  function restoreSession() {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const user = sessionStorage.getItem(USER_KEY);
    if (token && user) {
      try {
        session = { token, user: JSON.parse(user) };
      } catch (_) {
        session = null;
      }
    }
  }

  function signedOut(message) {
    session = null;
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(USER_KEY);
    $('app-view').hidden = true;
    $('signin-view').hidden = false;
    $('signin-message').textContent = message || '';
    $('signin-username').focus();
  }

  async function signIn(event) {
    event.preventDefault();
    const button = $('signin-submit');
    const message = $('signin-message');
    message.textContent = '';
    const username = $('signin-username').value.trim();
    const password = $('signin-password').value;
    if (!username || !password) {
      message.textContent = 'Enter your username and password.';
      return;
    }
    button.disabled = true;
    try {
      const answer = await api('POST', '/api/auth/login', { username, password });
      if (answer.user.role !== 'admin') {
        // Not kept: the token is given back at once.
        await api('POST', '/api/auth/logout', undefined, answer.token).catch(() => {});
        message.textContent = 'This account is not an admin: the console is for moderators only.';
        return;
      }
      session = { token: answer.token, user: answer.user };
      sessionStorage.setItem(TOKEN_KEY, answer.token);
      sessionStorage.setItem(USER_KEY, JSON.stringify(answer.user));
      $('signin-password').value = '';
      showApp();
    } catch (error) {
      message.textContent = describeError(error);
    } finally {
      button.disabled = false;
    }
  }

  async function signOut() {
    await api('POST', '/api/auth/logout').catch(() => {});
    signedOut('You have signed out.');
  }

  function showApp() {
    $('signin-view').hidden = true;
    $('app-view').hidden = false;
    $('who').textContent = `Signed in as ${session.user.username}`;
    if (!location.hash || location.hash === '#') location.hash = '#/dashboard';
    else render();
  }

  // --- routing -------------------------------------------------------

  function currentRoute() {
    const hash = location.hash.replace(/^#\/?/, '');
    const [path, search] = hash.split('?');
    const parts = path.split('/').map(decodeURIComponent);
    return { section: parts[0] || 'dashboard', id: parts[1], params: new URLSearchParams(search || '') };
  }

  function go(section, params) {
    location.hash = `#/${section}${query(params || {})}`;
  }

  const VIEWS = {
    dashboard: dashboardView,
    reports: reportsView,
    stories: storiesView,
    story: storyView,
    users: usersView,
    user: userView,
    audit: auditView,
  };
  const NAV_OF = { story: 'stories', user: 'users' };

  async function render() {
    if (!session) return;
    const mine = ++renderCount;
    for (const url of blobUrls) URL.revokeObjectURL(url);
    blobUrls = [];
    const route = currentRoute();
    const view = VIEWS[route.section] || dashboardView;
    const navSection = NAV_OF[route.section] || route.section;
    for (const link of document.querySelectorAll('nav a')) {
      if (link.dataset.section === navSection) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    const main = $('main');
    main.setAttribute('aria-busy', 'true');
    let content;
    try {
      content = await view(route);
    } catch (error) {
      if (!session) return;
      content = [h('h1', {}, 'Could not load this page'), h('p', { class: 'error', role: 'alert' }, describeError(error))];
    }
    if (mine !== renderCount) return;
    main.replaceChildren(...[content].flat(Infinity).filter((node) => node !== null && node !== undefined && node !== false));
    main.removeAttribute('aria-busy');
    document.title = `${(main.querySelector('h1') || {}).textContent || 'Console'} · Storybook moderation`;
    main.focus({ preventScroll: true });
  }

  // Runs an action from a button: disables it meanwhile, says how it went
  // on the page, and redraws the view so nothing needs a reload.
  async function act(button, work, success) {
    button.disabled = true;
    try {
      const result = await work();
      flash(typeof success === 'function' ? success(result) : success, 'ok');
      await refreshBadge();
      await render();
    } catch (error) {
      flash(describeError(error), 'error');
      button.disabled = false;
    }
  }

  function confirmAction(text, confirmLabel) {
    const dialog = $('confirm-dialog');
    $('confirm-text').textContent = text;
    $('confirm-ok').textContent = confirmLabel;
    return new Promise((resolve) => {
      const finish = (answer) => {
        $('confirm-ok').removeEventListener('click', ok);
        $('confirm-cancel').removeEventListener('click', cancel);
        dialog.removeEventListener('cancel', cancel);
        if (dialog.open) dialog.close();
        resolve(answer);
      };
      const ok = () => finish(true);
      const cancel = () => finish(false);
      $('confirm-ok').addEventListener('click', ok);
      $('confirm-cancel').addEventListener('click', cancel);
      dialog.addEventListener('cancel', cancel);
      dialog.showModal();
      $('confirm-cancel').focus();
    });
  }

  async function refreshBadge() {
    try {
      const stats = await api('GET', '/api/admin/stats');
      const badge = $('nav-open-reports');
      badge.hidden = !stats.open_reports;
      badge.textContent = stats.open_reports;
      badge.setAttribute('aria-label', `${stats.open_reports} open`);
      return stats;
    } catch (_) {
      return null;
    }
  }

  // --- shared pieces -------------------------------------------------

  function pager(page, section, params) {
    const pages = Math.max(1, Math.ceil(page.total / page.page_size));
    const goTo = (number) => () => go(section, { ...params, page: number > 1 ? number : '' });
    return h('nav', { class: 'pager', 'aria-label': 'Pages' },
      h('button', { type: 'button', id: 'page-previous', disabled: page.page <= 1, on: { click: goTo(page.page - 1) } }, '← Previous'),
      h('span', { 'aria-live': 'polite' }, `Page ${page.page} of ${pages} · ${page.total} in all`),
      h('button', { type: 'button', id: 'page-next', disabled: page.page >= pages, on: { click: goTo(page.page + 1) } }, 'Next →'));
  }

  function table(columns, rows, emptyText) {
    if (!rows.length) return h('p', { class: 'muted' }, emptyText);
    return h('table', {},
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows));
  }

  function row(columns, cells, attributes) {
    return h('tr', attributes || {}, cells.map((cell, i) => h('td', { 'data-label': columns[i] }, cell)));
  }

  function filterForm(id, fields, onSubmit) {
    const form = h('form', { class: 'filters', id, role: 'search', on: { submit: (event) => { event.preventDefault(); onSubmit(new FormData(form)); } } },
      fields, h('button', { type: 'submit', class: 'primary' }, 'Apply'));
    return form;
  }

  function textField(name, label, value, id) {
    return h('label', { for: id }, label, h('input', { id, name, value: value || '', type: 'search' }));
  }

  function selectField(name, label, options, value, id) {
    return h('label', { for: id }, label,
      h('select', { id, name }, options.map(([v, text]) => h('option', { value: v, selected: v === (value || '') }, text))));
  }

  function storyActions(story) {
    const buttons = [];
    if (story.status === 'published') {
      buttons.push(h('button', { type: 'button', id: `unpublish-${story.id}`, on: { click: (event) => act(event.currentTarget,
        () => api('PATCH', `/api/stories/${story.id}`, { status: 'draft' }),
        `“${story.title}” is unpublished: it is a draft again.`) } }, 'Unpublish'));
    }
    buttons.push(h('button', { type: 'button', class: 'danger', id: `delete-${story.id}`, on: { click: async (event) => {
      const button = event.currentTarget;
      if (!await confirmAction(`Delete “${story.title}” by ${story.author.username}? This cannot be undone.`, 'Delete the story')) return;
      await act(button, async () => {
        await api('DELETE', `/api/stories/${story.id}`);
        if (currentRoute().section === 'story') {
          keepFlash = true;
          go('stories');
        }
      }, `“${story.title}” was deleted.`);
    } } }, 'Delete'));
    return h('div', { class: 'actions' }, buttons);
  }

  // --- views ---------------------------------------------------------

  async function dashboardView() {
    const stats = await refreshBadge() || await api('GET', '/api/admin/stats');
    const card = (label, value, href) => h('div', { class: 'card stat' },
      h('div', { class: 'value' }, href ? h('a', { href }, String(value)) : String(value)),
      h('div', { class: 'label' }, label));
    const minutes = Math.floor(stats.uptime_s / 60);
    const uptime = minutes >= 60 * 24 ? `${Math.floor(minutes / 1440)} d ${Math.floor(minutes / 60) % 24} h`
      : minutes >= 60 ? `${Math.floor(minutes / 60)} h ${minutes % 60} min` : `${minutes} min ${stats.uptime_s % 60} s`;
    const cards = [
      card('Open reports', stats.open_reports, '#/reports'),
      card('Users', stats.users, '#/users'),
      card('Stories', stats.stories, '#/stories'),
      card('Drawings', stats.drawings),
      card('Server memory (RSS)', `${(stats.rss_bytes / 1048576).toFixed(1)} MB`),
      card('Up for', uptime),
    ];
    if (stats.connections !== undefined) cards.push(card('Live connections', stats.connections));
    return [h('h1', {}, 'Dashboard'), h('div', { class: 'stats', id: 'stats' }, cards), await backupSection()];
  }

  // A backup is the whole database as one file (the format of `storybook
  // export`): on a free plan, whose database the host deletes after 30
  // days, it is how the children's stories outlive it.
  async function backupSection() {
    const last = await api('GET', `/api/admin/audit${query({ action: 'data_exported', page_size: 1 })}`);
    const entry = last.items[0];
    const lastText = entry
      ? `The last backup was started ${when(entry.created_at)} by ${entry.admin.username}.`
      : 'No backup has been taken yet.';
    const download = h('button', { type: 'button', id: 'backup-download', on: { click: (event) => act(event.currentTarget, downloadBackup,
      (saved) => `Saved ${saved.name} (${size(saved.size)}). Keep it somewhere safe, away from this server.`) } },
    'Download a backup');
    return h('section', { class: 'card backups' },
      h('h2', {}, 'Backups'),
      h('p', { id: 'backup-last' }, lastText),
      h('p', { class: 'note' }, 'A backup holds every account, story, drawing and setting. '
        + 'Free hosting deletes its database after 30 days: download one every week and before any change of plan.'),
      h('div', { class: 'actions' }, download));
  }

  function size(bytes) {
    return bytes < 1048576 ? `${Math.max(1, Math.round(bytes / 1024))} KB` : `${(bytes / 1048576).toFixed(1)} MB`;
  }

  async function downloadBackup() {
    let response;
    try {
      response = await fetch('/api/admin/export', { headers: { Authorization: `Bearer ${session.token}` } });
    } catch (networkError) {
      throw new Error('the server could not be reached');
    }
    if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
    const blob = await response.blob();
    const named = /filename="([^"]+)"/.exec(response.headers.get('Content-Disposition') || '');
    const name = named ? named[1] : 'storybook-backup.jsonl';
    const link = h('a', { href: URL.createObjectURL(blob), download: name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60000);
    return { name, size: blob.size };
  }

  async function reportsView({ params }) {
    const status = params.get('status') || 'open';
    const page = Number(params.get('page')) || 1;
    const answer = await api('GET', `/api/admin/reports${query({ status: status === 'all' ? '' : status, page, page_size: PAGE_SIZE })}`);
    const columns = ['Story', 'Author', 'Reason', 'Reported', 'Decision'];
    const rows = answer.items.map((report) => {
      const story = report.story;
      const storyCell = story
        ? [h('a', { href: `#/story/${story.id}`, id: `report-story-${report.id}` }, story.title), ' ', chip(story.status),
          h('div', { class: 'excerpt' }, story.excerpt)]
        : h('span', { class: 'muted' }, 'The story was deleted');
      let decision;
      if (report.status === 'open') {
        const select = h('select', { id: `report-action-${report.id}`, 'aria-label': `What to do with the story of report ${report.id}` },
          STORY_ACTIONS.map(([value, text]) => h('option', { value }, text)));
        const resolve = async (event) => {
          const button = event.currentTarget;
          const action = select.value;
          if (action === 'delete' && !await confirmAction(`Resolve report ${report.id} and delete “${story ? story.title : 'the story'}”? This cannot be undone.`, 'Delete the story')) return;
          await act(button, () => api('PATCH', `/api/admin/reports/${report.id}`, { status: 'resolved', action }),
            `Report ${report.id} resolved${action === 'unpublish' ? ': the story is a draft again' : action === 'delete' ? ': the story was deleted' : ''}. The reporter was told.`);
        };
        const dismiss = (event) => act(event.currentTarget,
          () => api('PATCH', `/api/admin/reports/${report.id}`, { status: 'dismissed', action: 'none' }),
          `Report ${report.id} dismissed. The reporter was told.`);
        decision = h('div', { class: 'actions' }, select,
          h('button', { type: 'button', class: 'primary', id: `report-resolve-${report.id}`, on: { click: resolve } }, 'Resolve'),
          h('button', { type: 'button', id: `report-dismiss-${report.id}`, on: { click: dismiss } }, 'Dismiss'));
      } else {
        decision = [chip(report.status), ' ', report.action && report.action !== 'none' ? `(${report.action})` : '',
          h('div', { class: 'muted' }, when(report.resolved_at))];
      }
      return row(columns, [
        storyCell,
        story ? userLink(story.author) : '—',
        report.reason,
        [userLink(report.reporter), h('div', { class: 'muted' }, when(report.created_at))],
        decision,
      ], { 'data-report': report.id });
    });
    return [
      h('h1', {}, 'Reports'),
      filterForm('reports-filter', [
        selectField('status', 'Show', [['open', 'Open'], ['resolved', 'Resolved'], ['dismissed', 'Dismissed'], ['all', 'All (open first)']], status, 'reports-status'),
      ], (form) => go('reports', { status: form.get('status') })),
      table(columns, rows, status === 'open' ? 'No open reports. All caught up.' : 'No reports here.'),
      pager(answer, 'reports', { status }),
    ];
  }

  async function storyView({ id }) {
    const story = await api('GET', `/api/stories/${encodeURIComponent(id)}`);
    const facts = [
      ['Author', userLink(story.author)],
      ['Status', chip(story.status)],
      ['Genre', story.genre], ['Age group', story.age_group],
      ['Tags', story.tags.length ? story.tags.join(', ') : '—'],
      ['Source', story.source],
      ['Likes', story.likes], ['Reads', story.reads],
      ['Written', when(story.created_at)], ['Changed', when(story.updated_at)],
    ];
    const pages = await Promise.all(story.pages.map(async (page, index) => h('section', { class: 'card page', 'aria-label': `Page ${index + 1}` },
      h('h3', {}, `Page ${index + 1}`),
      h('p', {}, page.text),
      page.drawing_id ? await drawingImage(page.drawing_id, `The drawing on page ${index + 1}`) : null)));
    const reports = await api('GET', `/api/admin/reports${query({ story: story.id, page_size: 100 })}`);
    const about = reports.items;
    return [
      h('p', {}, h('a', { href: '#/stories' }, '← All stories')),
      h('h1', { id: 'story-title' }, story.title),
      h('dl', { class: 'facts' }, facts.map(([term, value]) => [h('dt', {}, term), h('dd', {}, value)])),
      storyActions(story),
      h('h2', {}, 'Reports about this story'),
      about.length ? h('ul', {}, about.map((report) => h('li', {}, chip(report.status), ' ', `“${report.reason}” by `, userLink(report.reporter), ` · ${when(report.created_at)}`)))
        : h('p', { class: 'muted' }, 'None.'),
      h('h2', {}, 'Pages'),
      h('div', { class: 'pages' }, pages),
    ];
  }

  async function storiesView({ params }) {
    const filters = { q: params.get('q') || '', status: params.get('status') || '', author: params.get('author') || '' };
    const page = Number(params.get('page')) || 1;
    const answer = await api('GET', `/api/admin/stories${query({ ...filters, page, page_size: PAGE_SIZE })}`);
    const columns = ['Title', 'Author', 'Status', 'Pages', 'Likes', 'Reads', 'Written', 'Actions'];
    const rows = answer.items.map((story) => row(columns, [
      [h('a', { href: `#/story/${story.id}` }, story.title), h('div', { class: 'excerpt' }, story.excerpt)],
      userLink(story.author), chip(story.status), story.page_count, story.likes, story.reads, when(story.created_at),
      storyActions(story),
    ], { 'data-story': story.id }));
    return [
      h('h1', {}, 'Stories'),
      filterForm('stories-filter', [
        textField('q', 'Title contains', filters.q, 'stories-q'),
        selectField('status', 'Status', [['', 'Any'], ['draft', 'Drafts'], ['published', 'Published']], filters.status, 'stories-status'),
        textField('author', 'Author (username)', filters.author, 'stories-author'),
      ], (form) => go('stories', { q: form.get('q').trim(), status: form.get('status'), author: form.get('author').trim() })),
      table(columns, rows, 'No stories match.'),
      pager(answer, 'stories', filters),
    ];
  }

  async function usersView({ params }) {
    const q = params.get('q') || '';
    const page = Number(params.get('page')) || 1;
    const answer = await api('GET', `/api/admin/users${query({ q, page, page_size: PAGE_SIZE })}`);
    const columns = ['User', 'Email', 'Role', 'Status', 'Joined'];
    const rows = answer.items.map((user) => row(columns, [
      userLink(user), user.email, chip(user.role), user.active ? chip('active') : chip('deactivated', 'inactive'), when(user.created_at),
    ], { 'data-user': user.username }));
    return [
      h('h1', {}, 'Users'),
      filterForm('users-filter', [textField('q', 'Username or email contains', q, 'users-q')],
        (form) => go('users', { q: form.get('q').trim() })),
      table(columns, rows, 'No users match.'),
      pager(answer, 'users', { q }),
    ];
  }

  async function userView({ id }) {
    const user = /^\d+$/.test(id || '')
      ? await api('GET', `/api/admin/users/${id}`).catch((error) => {
        if (error.status === 404) return null;
        throw error;
      })
      : null;
    if (!user) return [h('h1', {}, 'No such user'), h('p', {}, `There is no user ${id}.`)];
    const { username } = user;
    const [profile, stories, reports] = await Promise.all([
      api('GET', `/api/users/${encodeURIComponent(username)}`).catch(() => null),
      api('GET', `/api/admin/stories${query({ author: username, page_size: 10 })}`),
      api('GET', `/api/admin/reports${query({ author: username, page_size: 10 })}`),
    ]);
    const self = user.id === session.user.id;
    const roleSelect = h('select', { id: 'user-role', 'aria-label': 'Role', disabled: self },
      [['user', 'User'], ['admin', 'Admin']].map(([v, t]) => h('option', { value: v, selected: user.role === v }, t)));
    const changeRole = h('button', { type: 'button', id: 'user-role-save', disabled: self, on: { click: (event) => act(event.currentTarget,
      () => api('PATCH', `/api/admin/users/${user.id}`, { role: roleSelect.value }),
      (changed) => `${changed.username} is now ${changed.role === 'admin' ? 'an admin' : 'a user'}.`) } }, 'Change role');
    const toggle = user.active
      ? h('button', { type: 'button', class: 'danger', id: 'user-deactivate', disabled: self, on: { click: async (event) => {
        const button = event.currentTarget;
        if (!await confirmAction(`Deactivate ${user.username}? They are signed out everywhere at once and cannot sign in until reactivated.`, 'Deactivate')) return;
        await act(button, () => api('PATCH', `/api/admin/users/${user.id}`, { active: false }),
          `${user.username} is deactivated and signed out everywhere.`);
      } } }, 'Deactivate')
      : h('button', { type: 'button', id: 'user-reactivate', on: { click: (event) => act(event.currentTarget,
        () => api('PATCH', `/api/admin/users/${user.id}`, { active: true }),
        `${user.username} is active again and may sign in.`) } }, 'Reactivate');
    const resetPassword = h('button', { type: 'button', id: 'user-reset-code', on: { click: async (event) => {
      const button = event.currentTarget;
      if (!await confirmAction(`Make a one-time code so that ${user.username} can choose a new password? A code made earlier stops working.`, 'Make a code')) return;
      await act(button, () => api('POST', `/api/admin/users/${user.id}/reset-code`),
        (issued) => `Give ${user.display_name || user.username} this code: ${issued.code.replace(/(.{4})(?=.)/g, '$1-')}. `
          + `With it they can choose a new password once, until ${when(issued.expires_at)}. `
          + 'It is shown only now: write it down before you leave this page.');
    } } }, 'Reset password');
    const facts = [
      ['Display name', user.display_name], ['Email', user.email], ['Role', chip(user.role)],
      ['Status', user.active ? chip('active') : chip('deactivated', 'inactive')],
      ['Joined', when(user.created_at)], ['Bio', user.bio || '—'],
      ['Published stories', profile ? profile.stories : '—'],
    ];
    return [
      h('p', {}, h('a', { href: '#/users' }, '← All users')),
      h('h1', {}, user.username),
      h('dl', { class: 'facts' }, facts.map(([term, value]) => [h('dt', {}, term), h('dd', {}, value)])),
      h('div', { class: 'actions' }, roleSelect, changeRole, toggle, resetPassword),
      h('p', { class: 'note' }, self
        ? 'This is you: you cannot remove your own admin role or deactivate yourself, so the last admin cannot lock everyone out.'
        : 'Deactivating signs them out everywhere: every token they hold stops working at once and their open connections close.'),
      h('h2', {}, `Their stories (${stories.total})`),
      stories.items.length ? h('ul', {}, stories.items.map((story) => h('li', {}, h('a', { href: `#/story/${story.id}` }, story.title), ' ', chip(story.status))))
        : h('p', { class: 'muted' }, 'None.'),
      stories.total > stories.items.length ? h('p', {}, h('a', { href: `#/stories?author=${encodeURIComponent(username)}` }, 'All their stories →')) : null,
      h('h2', {}, `Reports about their stories (${reports.total})`),
      reports.items.length ? h('ul', {}, reports.items.map((report) => h('li', {}, chip(report.status), ' ',
        report.story ? h('a', { href: `#/story/${report.story.id}` }, report.story.title) : 'a deleted story',
        `: “${report.reason}” by ${report.reporter.username}`)))
        : h('p', { class: 'muted' }, 'None.'),
    ];
  }

  function auditTarget(entry) {
    const { type, id } = entry.target;
    if (type === 'story' && entry.action !== 'story_deleted') return h('a', { href: `#/story/${id}` }, `Story ${id}`);
    if (type === 'user') return h('a', { href: `#/user/${id}` }, entry.detail.username || `User ${id}`);
    if (type === 'report') return `Report ${id}`;
    if (type === 'database') return 'The whole database';
    return `${type} ${id}`;
  }

  function auditDetail(detail) {
    const parts = Object.entries(detail || {}).map(([key, value]) => `${key}: ${Array.isArray(value) ? value.join(', ') : value === null ? '—' : value}`);
    return h('span', { class: 'detail' }, parts.join(' · ') || '—');
  }

  async function auditView({ params }) {
    const filters = { admin: params.get('admin') || '', action: params.get('action') || '' };
    const page = Number(params.get('page')) || 1;
    const answer = await api('GET', `/api/admin/audit${query({ ...filters, page, page_size: PAGE_SIZE })}`);
    const columns = ['When', 'Admin', 'Action', 'Target', 'Detail'];
    const rows = answer.items.map((entry) => row(columns, [
      when(entry.created_at), userLink(entry.admin), ACTION_LABELS[entry.action] || entry.action, auditTarget(entry), auditDetail(entry.detail),
    ], { 'data-action': entry.action }));
    return [
      h('h1', {}, 'Audit log'),
      filterForm('audit-filter', [
        textField('admin', 'Admin (username)', filters.admin, 'audit-admin'),
        selectField('action', 'Action', [['', 'Any'], ...Object.entries(ACTION_LABELS)], filters.action, 'audit-action'),
      ], (form) => go('audit', { admin: form.get('admin').trim(), action: form.get('action') })),
      table(columns, rows, 'Nothing recorded yet.'),
      pager(answer, 'audit', filters),
    ];
  }

  // --- start ---------------------------------------------------------

  document.addEventListener('DOMContentLoaded', () => {
    $('signin-form').addEventListener('submit', signIn);
    $('signout').addEventListener('click', signOut);
    window.addEventListener('hashchange', () => {
      if (keepFlash) keepFlash = false;
      else flash('');
      render();
    });
    restoreSession();
    if (session) {
      showApp();
      refreshBadge();
    } else {
      signedOut('');
    }
  });
})();
