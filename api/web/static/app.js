// cunzheng judge's page (一键调证). Same-origin requests only; no external resources.
//
// With a file and a code: GET /v1/deposits/{code} tells the deposit's digest algorithm; SHA-2
// digests are computed here with Web Crypto and only "alg:hex" is sent (POST /v1/verify), so the
// file never leaves this computer. SM3, or a browser without crypto.subtle (not a secure
// context), falls back to POST /v1/verify/file, and the page says the file was sent.
"use strict";

(() => {
  const LANG_KEY = "cunzheng.lang";
  const WEB_ALGS = { sha256: "SHA-256", sha384: "SHA-384", sha512: "SHA-512" };

  const STR = {
    zh: {
      pageTitle: "存证核验 · 一键调证 — cunzheng",
      skip: "跳到主要内容",
      title: "存证核验 · 一键调证",
      subtitle: "互联网借贷纠纷电子证据存证核验",
      langToggle: "English",
      langToggleLabel: "Switch to English",
      formHeading: "核验存证",
      codeLabel: "存证编码",
      codeHint: "如 CZ-7HZ9-QJ9G-VJ9Z-07X6-Q。大小写、空格和短横线均可；字母 O 按数字 0、I 和 L 按数字 1 识别。",
      fileLabel: "待比对文件（可选）",
      fileHint: "选择当事人提交的证据文件。文件摘要在本机浏览器内计算，文件不会离开本机（仅 SM3 存证或浏览器不支持时才发送至服务器计算，届时会提示）。",
      clearFile: "清除文件",
      chooseFile: "选择文件",
      noFile: "未选择文件",
      judgeSummary: "已登录法官（API 密钥）",
      apiKeyLabel: "API 密钥",
      apiKeyHint: "填写后可下载离线验证包、一键调证查看非公开元数据。密钥仅用于本页请求（以 Authorization: Bearer 发送），不会保存。",
      verify: "核验",
      needCodeOrFile: "请输入存证编码，或选择一个文件。",
      lookingUp: "正在查询存证记录…",
      hashing: "正在本机计算文件摘要（{alg}，{size}）…",
      uploading: "正在将文件发送至服务器计算摘要（{size}）…",
      verifying: "正在核验…",
      done: "核验完成。",
      verdict: {
        VERIFIED: "核验通过",
        MISMATCH: "比对结果不一致",
        NOT_FOUND: "尚未存证",
        INVALID: "验证无效",
      },
      explain: {
        VERIFIED_file: "所提交文件与存证文件一致；存证记录完整，签名、日志收录证明与可信时间戳均有效。",
        VERIFIED: "存证记录完整，签名、日志收录证明与可信时间戳均有效。本次未比对文件。",
        VERIFIED_pending: "存证记录完整，签名与日志收录证明有效；可信时间戳尚待签发。",
        MISMATCH: "所提交文件的摘要与存证时的摘要不一致：该文件不是存证时的文件，或已被修改。",
        NOT_FOUND_code: "该存证编码格式正确，但存证库中没有对应的存证记录。",
        NOT_FOUND_digest: "存证库中没有与该文件摘要相同的存证记录。",
        INVALID: "存证记录的证明、签名、编码或时间戳未通过验证，详见下方各步骤。",
      },
      modeLocal: "文件摘要在本机计算（{alg}），文件未离开本机。",
      modeUploadSm3: "该存证使用 SM3 摘要算法，浏览器无法在本机计算：文件已发送至服务器计算摘要（服务器不保存文件）。",
      modeUploadInsecure: "此浏览器环境不支持本机计算摘要（非安全连接）：文件已发送至服务器计算摘要（服务器不保存文件）。",
      modeNoFile: "未提供文件：仅核验存证记录本身（编码、签名、日志收录与时间戳）。",
      modeSearch: "未输入存证编码：按文件的 SHA-256 摘要查找存证记录。",
      f: {
        code: "存证编码",
        trustedTime: "可信时间",
        tsa: "时间戳机构",
        depositor: "存证方",
        kind: "证据类型",
        index: "日志序号",
        checkpoint: "检查点",
        digest: "存证摘要",
        presented: "所提交文件摘要",
        received: "存证接收时间",
        captured: "存证方记录时间",
        typed: "输入的编码",
      },
      tsPending: "时间戳待签发",
      tsFailed: "时间戳未通过验证",
      beijing: "北京时间",
      checkpointVal: "规模 {size}，{time}",
      sizeVal: "{n} 字节",
      stepsHeading: "核验步骤",
      step: {
        digest: "文件摘要比对",
        code: "存证编码",
        signature: "存证方签名",
        checkpoint: "日志检查点",
        inclusion: "日志收录证明",
        timestamp: "可信时间戳",
        consistency: "日志一致性",
      },
      status: { passed: "通过", failed: "未通过", not_applicable: "不适用", pending: "待完成" },
      kinds: {},
      judgeActions: "法官操作",
      retrieve: "一键调证（查看元数据）",
      downloadBundle: "下载离线验证包",
      needKey: "需要 API 密钥：请在上方“已登录法官”中填写。",
      retrieving: "正在调取…",
      downloading: "正在下载…",
      downloaded: "已下载 {name}",
      metaHeading: "存证元数据（非公开）",
      caseCheck: "本案证据要素核查（DB4401/T 310—2024 附录B）",
      caseChecking: "正在核查本案证据……",
      caseHeading: "案件 {contract} 的证据要素（存证方 {depositor}）",
      caseComplete: "证据要素齐全",
      caseIncomplete: "证据要素不齐全或格式不符",
      caseStatus: { present: "已提供", missing: "缺少", not_provided: "未提供（非必备）" },
      caseCount: "{count} 份：{formats}",
      caseRequirement: { required: "必备", if_any: "如有则提供", optional: "可选" },
      accessLogged: "本次调取已记入访问日志。",
      depositorName: "存证方名称",
      meta: {
        file_name: "文件名",
        contract_no: "合同编号",
        business_no: "业务流水号",
        case_ref: "案号",
        case_no: "案号",
        borrower_commitment: "借款人身份承诺值",
      },
      metaEmpty: "（无元数据）",
      errorNetwork: "无法连接服务器：{msg}",
      errorHttp: "服务器返回错误（HTTP {status}）",
      detailLabel: "详情",
      // Chinese for the server's English detail, from the problem's structured details.
      problem: {
        codeLength: "存证编码应为 CZ 后 16 位字符加 1 位校验位，实际为 {got} 位。",
        codeChar: "第 {position} 位字符不是存证编码使用的字符。",
        codeCheck: "校验位不符：编码很可能输错了，请逐位核对。",
      },
      offlineNote: "离线核验：下载验证包后，可用 cunzheng 核验工具在无网络环境下独立核验，无需信任本服务器。",
      logLabel: "日志",
    },
    en: {
      pageTitle: "Evidence verification · One-click retrieval — cunzheng",
      skip: "Skip to main content",
      title: "Evidence verification · 一键调证",
      subtitle: "Evidence depository for internet-lending disputes",
      langToggle: "中文",
      langToggleLabel: "切换到中文",
      formHeading: "Verify a deposit",
      codeLabel: "Deposit code",
      codeHint: "E.g. CZ-7HZ9-QJ9G-VJ9Z-07X6-Q. Any case, with or without spaces and dashes; the letter O is read as 0, I and L as 1.",
      fileLabel: "File to compare (optional)",
      fileHint: "Choose the evidence file the party submitted. Its digest is computed in this browser and the file does not leave this computer (only for SM3 deposits, or where the browser cannot, is it sent to the server, and the page says so).",
      clearFile: "Clear file",
      chooseFile: "Choose file",
      noFile: "No file chosen",
      judgeSummary: "Signed-in judge (API key)",
      apiKeyLabel: "API key",
      apiKeyHint: "With a key you can download the offline bundle and retrieve (一键调证) the private metadata. It is used only for this page's requests (sent as Authorization: Bearer) and never stored.",
      verify: "Verify",
      needCodeOrFile: "Enter a deposit code, or choose a file.",
      lookingUp: "Looking up the deposit…",
      hashing: "Computing the file's digest in this browser ({alg}, {size})…",
      uploading: "Sending the file to the server for hashing ({size})…",
      verifying: "Verifying…",
      done: "Done.",
      verdict: {
        VERIFIED: "VERIFIED",
        MISMATCH: "MISMATCH",
        NOT_FOUND: "NOT FOUND",
        INVALID: "INVALID",
      },
      explain: {
        VERIFIED_file: "The file is the deposited one; the record is intact and its signature, log inclusion proof and trusted time-stamp are valid.",
        VERIFIED: "The record is intact and its signature, log inclusion proof and trusted time-stamp are valid. No file was compared.",
        VERIFIED_pending: "The record is intact and its signature and log inclusion proof are valid; the trusted time-stamp is still pending.",
        MISMATCH: "The file's digest differs from the deposited one: it is not the deposited file, or it has been changed.",
        NOT_FOUND_code: "The code is well-formed, but no deposit has it.",
        NOT_FOUND_digest: "No deposit has this file's digest.",
        INVALID: "A proof, signature, code or time-stamp of the record does not check out; see the steps below.",
      },
      modeLocal: "The file's digest was computed in this browser ({alg}); the file did not leave this computer.",
      modeUploadSm3: "This deposit uses the SM3 digest, which the browser cannot compute: the file was sent to the server for hashing (the server does not keep it).",
      modeUploadInsecure: "This browser cannot compute digests here (not a secure context): the file was sent to the server for hashing (the server does not keep it).",
      modeNoFile: "No file given: only the deposit record itself was checked (code, signature, log inclusion, time-stamp).",
      modeSearch: "No code given: deposits were looked up by the file's SHA-256 digest.",
      f: {
        code: "Deposit code",
        trustedTime: "Trusted time",
        tsa: "Time-stamp authority",
        depositor: "Depositor",
        kind: "Evidence kind",
        index: "Log index",
        checkpoint: "Checkpoint",
        digest: "Deposited digest",
        presented: "Presented file's digest",
        received: "Received at",
        captured: "Captured at (depositor's clock)",
        typed: "Code entered",
      },
      tsPending: "time-stamp pending",
      tsFailed: "time-stamp does not verify",
      beijing: "Beijing time, UTC+8",
      checkpointVal: "size {size}, {time}",
      sizeVal: "{n} bytes",
      stepsHeading: "Verification steps",
      step: {
        digest: "File digest",
        code: "Deposit code",
        signature: "Depositor signature",
        checkpoint: "Log checkpoint",
        inclusion: "Log inclusion proof",
        timestamp: "Trusted time-stamp",
        consistency: "Log consistency",
      },
      status: { passed: "passed", failed: "failed", not_applicable: "not applicable", pending: "pending" },
      kinds: {
        credit_line_contract: "Credit line contract",
        loan_contract: "Loan contract",
        loan_voucher: "Loan voucher (IOU)",
        disbursement_voucher: "Disbursement voucher",
        repayment_details: "Repayment and arrears details",
        identity_verification: "Borrower identity verification",
        loan_process_record: "Record of the loan process",
        other: "Other evidence",
        evidence_catalog: "Evidence catalogue",
      },
      judgeActions: "Judge's actions",
      retrieve: "Retrieve (一键调证): private metadata",
      downloadBundle: "Download offline bundle",
      needKey: "Needs an API key: fill it in under “Signed-in judge” above.",
      retrieving: "Retrieving…",
      downloading: "Downloading…",
      downloaded: "Downloaded {name}",
      metaHeading: "Deposit metadata (private)",
      caseCheck: "Check this case's evidence (DB4401/T 310—2024 Annex B)",
      caseChecking: "Checking the case…",
      caseHeading: "Evidence of case {contract} (depositor {depositor})",
      caseComplete: "All required evidence elements present",
      caseIncomplete: "Evidence elements missing or in formats the standard does not list",
      caseStatus: { present: "present", missing: "missing", not_provided: "not provided (not required)" },
      caseCount: "{count} file(s): {formats}",
      caseRequirement: { required: "required", if_any: "if any", optional: "optional" },
      accessLogged: "This access has been recorded in the access log.",
      depositorName: "Depositor's name",
      meta: {
        file_name: "File name",
        contract_no: "Contract number",
        business_no: "Business serial number",
        case_ref: "Case reference",
        case_no: "Case number",
        borrower_commitment: "Borrower identity commitment",
      },
      metaEmpty: "(no metadata)",
      errorNetwork: "Cannot reach the server: {msg}",
      errorHttp: "The server answered with an error (HTTP {status})",
      detailLabel: "Detail",
      problem: {},
      offlineNote: "Offline: with the downloaded bundle, the cunzheng verifier checks a deposit with no network and no trust in this server.",
      logLabel: "Log",
    },
  };

  // ---------------------------------------------------------------------------------------
  const $ = (id) => document.getElementById(id);
  const el = {
    toggle: $("lang-toggle"),
    form: $("verify-form"),
    code: $("code"),
    file: $("file"),
    clearFile: $("clear-file"),
    fileName: $("file-name"),
    apiKey: $("api-key"),
    judge: $("judge"),
    verify: $("verify"),
    status: $("status"),
    error: $("error"),
    result: $("result"),
    banner: $("verdict-banner"),
    verdict: $("verdict"),
    verdictAlt: $("verdict-alt"),
    explain: $("verdict-explain"),
    mode: $("mode"),
    facts: $("facts"),
    stepsBlock: $("steps-block"),
    steps: $("steps"),
    judgeActions: $("judge-actions"),
    retrieve: $("retrieve"),
    download: $("download"),
    judgeHint: $("judge-hint"),
    judgeStatus: $("judge-status"),
    metaBlock: $("meta-block"),
    caseCheck: $("case-check"),
    caseBlock: $("case-block"),
    caseHeading: $("case-heading"),
    caseVerdict: $("case-verdict"),
    caseElements: $("case-elements"),
    caseIssues: $("case-issues"),
    meta: $("meta"),
  };

  let lang = "zh";
  try {
    if (window.localStorage.getItem(LANG_KEY) === "en") lang = "en";
  } catch (_) {
    // storage may be disabled; Chinese stays the default
  }

  // What is on screen, kept so a language switch can redraw it.
  let shown = null; // {report, ctx}
  let shownError = null; // ApiError or Error
  let shownMeta = null; // retrieved bundle
  let shownCase = null; // the case check of the retrieved deposit's contract number
  let statusText = null; // () => string
  let judgeText = null; // () => string

  function t(path, vars) {
    let v = path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), STR[lang]);
    if (v === undefined) return undefined;
    if (vars) v = v.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
    return v;
  }
  const other = () => (lang === "zh" ? "en" : "zh");

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && problem.title) || `HTTP ${status}`);
      this.status = status;
      this.problem = problem;
    }
  }

  // --- language ------------------------------------------------------------------------------

  function applyLanguage() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.title = t("pageTitle");
    for (const node of document.querySelectorAll("[data-i18n]")) {
      const s = t(node.dataset.i18n);
      if (s !== undefined) node.textContent = s;
    }
    el.toggle.textContent = t("langToggle");
    el.toggle.lang = lang === "zh" ? "en" : "zh-CN";
    el.toggle.setAttribute("aria-label", t("langToggleLabel"));
    showFileName();
    el.status.textContent = statusText ? statusText() : "";
    el.judgeStatus.textContent = judgeText ? judgeText() : "";
    if (shown) renderReport();
    if (shownError) renderError();
    if (shownMeta) renderMeta();
    if (shownCase) renderCase();
  }

  el.toggle.addEventListener("click", () => {
    lang = other();
    try {
      window.localStorage.setItem(LANG_KEY, lang);
    } catch (_) {
      // not remembered, still switched
    }
    applyLanguage();
  });

  // --- formatting ----------------------------------------------------------------------------

  const pad = (n) => String(n).padStart(2, "0");

  function beijing(value) {
    const ms = typeof value === "number" ? value : Date.parse(value);
    if (!Number.isFinite(ms)) return String(value);
    const d = new Date(ms + 8 * 3600 * 1000);
    const s = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
      `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
    return lang === "zh" ? `${s}（${t("beijing")}）` : `${s} (${t("beijing")})`;
  }

  function humanSize(n) {
    if (n < 1024) return `${n} B`;
    const units = ["KB", "MB", "GB", "TB"];
    let v = n;
    let i = -1;
    do {
      v /= 1024;
      i += 1;
    } while (v >= 1024 && i < units.length - 1);
    return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
  }

  function sizeText(n) {
    const grouped = Number(n).toLocaleString("en-US");
    const bytes = t("sizeVal", { n: grouped });
    return n < 1024 ? bytes : `${bytes} (${humanSize(Number(n))})`;
  }

  function node(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function fact(dl, label, value, opts) {
    const o = opts || {};
    const dd = node("dd", { class: o.mono ? "mono" : null, "data-field": o.field });
    if (value instanceof Node) dd.append(value);
    else dd.textContent = value;
    if (o.sub) dd.append(node("span", { class: "sub" }, o.sub));
    if (o.title) dd.title = o.title;
    dl.append(node("dt", {}, label), dd);
  }

  // --- the API -------------------------------------------------------------------------------

  async function api(method, path, { json, form, key } = {}) {
    const headers = { Accept: "application/json, application/problem+json" };
    let body;
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    } else if (form !== undefined) {
      body = form;
    }
    if (key) headers.Authorization = `Bearer ${key}`;
    const response = await fetch(path, { method, headers, body, credentials: "omit", cache: "no-store" });
    const type = response.headers.get("content-type") || "";
    let data = null;
    if (type.includes("json")) {
      try {
        data = await response.json();
      } catch (_) {
        data = null;
      }
    }
    return { ok: response.ok, status: response.status, data, response };
  }

  const depositPath = (code) => `/v1/deposits/${encodeURIComponent(code)}`;
  const isNotFound = (r) => r.status === 404 && r.data && r.data.code === "not_found";
  const fail = (r) => {
    throw new ApiError(r.status, r.data);
  };

  function canHashHere() {
    return Boolean(window.isSecureContext && window.crypto && window.crypto.subtle &&
      typeof window.crypto.subtle.digest === "function");
  }

  async function hashHere(file, alg) {
    const buffer = await file.arrayBuffer();
    const digest = await window.crypto.subtle.digest(WEB_ALGS[alg], buffer);
    return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function setStatus(fn) {
    statusText = fn;
    el.status.textContent = fn ? fn() : "";
  }

  // --- verifying -----------------------------------------------------------------------------

  async function run() {
    const code = el.code.value.trim();
    const file = el.file.files && el.file.files[0] ? el.file.files[0] : null;
    clearOutput();
    if (!code && !file) {
      showError(new Error(t("needCodeOrFile")), "needCodeOrFile");
      el.code.focus();
      return;
    }
    busy(true);
    try {
      if (!file) {
        setStatus(() => t("lookingUp"));
        const r = await api("GET", depositPath(code));
        if (isNotFound(r)) return show(null, { mode: "nofile", typed: code });
        if (!r.ok) fail(r);
        return show(r.data, { mode: "nofile" });
      }
      const size = humanSize(file.size);
      if (!code) {
        // No code: every deposit of the file's SHA-256 digest.
        if (canHashHere()) {
          setStatus(() => t("hashing", { alg: "SHA-256", size }));
          const digest = `sha256:${await hashHere(file, "sha256")}`;
          setStatus(() => t("verifying"));
          const r = await api("POST", "/v1/verify", { json: { digest } });
          if (!r.ok) fail(r);
          return show(r.data, { mode: "local", search: true, alg: "sha256", presented: digest });
        }
        setStatus(() => t("uploading", { size }));
        const form = new FormData();
        form.append("file", file, file.name);
        const r = await api("POST", "/v1/verify/file", { form });
        if (!r.ok) fail(r);
        return show(r.data, { mode: "upload", reason: "insecure", search: true });
      }
      setStatus(() => t("lookingUp"));
      const found = await api("GET", depositPath(code));
      if (isNotFound(found)) return show(null, { mode: "nofile", typed: code });
      if (!found.ok) fail(found);
      const alg = found.data.evidence && found.data.evidence.alg;
      if (alg in WEB_ALGS && canHashHere()) {
        setStatus(() => t("hashing", { alg: WEB_ALGS[alg], size }));
        const digest = `${alg}:${await hashHere(file, alg)}`;
        setStatus(() => t("verifying"));
        const r = await api("POST", "/v1/verify", { json: { code, digest } });
        if (!r.ok) fail(r);
        return show(r.data, { mode: "local", alg, presented: digest, typed: code });
      }
      setStatus(() => t("uploading", { size }));
      const form = new FormData();
      form.append("code", code);
      form.append("file", file, file.name);
      const r = await api("POST", "/v1/verify/file", { form });
      if (!r.ok) fail(r);
      return show(r.data, {
        mode: "upload", reason: alg in WEB_ALGS ? "insecure" : "sm3", alg, typed: code,
      });
    } catch (err) {
      setStatus(null);
      showError(err);
    } finally {
      busy(false);
    }
  }

  function busy(on) {
    el.verify.disabled = on;
    el.form.setAttribute("aria-busy", on ? "true" : "false");
  }

  function clearOutput() {
    shown = null;
    shownError = null;
    shownMeta = null;
    shownCase = null;
    judgeText = null;
    setStatus(null);
    el.error.hidden = true;
    el.error.textContent = "";
    el.result.hidden = true;
    el.metaBlock.hidden = true;
    el.caseBlock.hidden = true;
    el.caseCheck.hidden = true;
    el.judgeStatus.textContent = "";
  }

  function show(report, ctx) {
    const r = report || { verdict: "NOT_FOUND", steps: [] };
    shown = { report: r, ctx };
    setStatus(() => t("done"));
    renderReport();
    el.result.hidden = false;
    if (r.code) {
      const url = new URL(window.location.href);
      url.searchParams.set("code", r.code);
      window.history.replaceState(null, "", url);
    }
    el.verdict.focus();
  }

  function explanation(r, ctx) {
    const v = r.verdict;
    if (v === "NOT_FOUND") return t(ctx.search ? "explain.NOT_FOUND_digest" : "explain.NOT_FOUND_code");
    if (v === "VERIFIED") {
      if (!r.trusted_time) return t("explain.VERIFIED_pending");
      return t(ctx.mode === "nofile" ? "explain.VERIFIED" : "explain.VERIFIED_file");
    }
    return t(`explain.${v}`) || "";
  }

  function renderReport() {
    const { report: r, ctx } = shown;
    const v = r.verdict in STR.zh.verdict ? r.verdict : "INVALID";
    el.banner.className = `verdict-banner v-${v}`;
    el.verdict.textContent = t(`verdict.${v}`);
    el.verdictAlt.textContent = lang === "zh" ? v.replace("_", " ") : (r.verdict_zh || STR.zh.verdict[v]);
    el.verdictAlt.lang = lang === "zh" ? "en" : "zh-CN";
    el.explain.textContent = explanation(r, ctx);

    // How the file was compared.
    let mode = null;
    if (ctx.mode === "local") mode = t("modeLocal", { alg: WEB_ALGS[ctx.alg] || ctx.alg });
    else if (ctx.mode === "upload") mode = t(ctx.reason === "sm3" ? "modeUploadSm3" : "modeUploadInsecure");
    else if (ctx.mode === "nofile" && v !== "NOT_FOUND") mode = t("modeNoFile");
    if (ctx.search) mode = `${t("modeSearch")} ${mode || ""}`.trim();
    el.mode.hidden = !mode;
    el.mode.textContent = mode || "";
    el.mode.className = ctx.mode === "upload" ? "mode mode-upload" : "mode";
    el.mode.dataset.mode = ctx.mode;

    // Facts.
    const dl = el.facts;
    dl.replaceChildren();
    const steps = Array.isArray(r.steps) ? r.steps : [];
    const stepOf = (name) => steps.find((s) => s.step === name);
    if (r.code) fact(dl, t("f.code"), r.code, { mono: true, field: "code" });
    else if (ctx.typed) fact(dl, t("f.typed"), ctx.typed, { mono: true, field: "typed" });
    if (r.verdict !== "NOT_FOUND" || r.code) {
      if (r.trusted_time) {
        fact(dl, t("f.trustedTime"), beijing(r.trusted_time), { title: r.trusted_time, field: "trusted_time" });
        if (r.tsa) fact(dl, t("f.tsa"), r.tsa, { field: "tsa" });
      } else {
        const ts = stepOf("timestamp");
        const failed = ts && ts.status === "failed";
        fact(dl, t("f.trustedTime"), node("span", { class: "pending" }, t(failed ? "tsFailed" : "tsPending")),
          { field: "trusted_time" });
      }
      if (r.depositor) {
        const name = shownMeta && shownMeta.depositor && shownMeta.depositor.name;
        fact(dl, t("f.depositor"), name ? `${name}（${r.depositor}）` : r.depositor, { field: "depositor" });
      }
      if (r.kind) {
        const label = lang === "zh" ? (r.kind_zh || r.kind) : (t(`kinds.${r.kind}`) || r.kind);
        fact(dl, t("f.kind"), label, { sub: label === r.kind ? null : r.kind, field: "kind" });
      }
      if (r.index !== undefined && r.index !== null) fact(dl, t("f.index"), String(r.index), { field: "index" });
      if (r.checkpoint) {
        const c = r.checkpoint;
        fact(dl, t("f.checkpoint"), t("checkpointVal", { size: c.size, time: beijing(c.time) }),
          { sub: c.origin, field: "checkpoint" });
      }
      if (r.evidence) {
        const e = r.evidence;
        fact(dl, t("f.digest"), `${e.alg}:${e.digest}`,
          { mono: true, sub: `${sizeText(e.size)} · ${e.media_type}`, field: "digest" });
      }
    }
    let presented = ctx.presented;
    const ds = stepOf("digest");
    if (!presented && ds && ds.details && ds.details.found) presented = ds.details.found;
    if (presented) fact(dl, t("f.presented"), presented, { mono: true, field: "presented" });
    if (r.received_at) fact(dl, t("f.received"), beijing(r.received_at), { title: r.received_at, field: "received_at" });
    if (r.captured_at) fact(dl, t("f.captured"), beijing(r.captured_at), { title: r.captured_at, field: "captured_at" });
    dl.hidden = dl.children.length === 0;

    // Steps.
    el.steps.replaceChildren();
    for (const s of steps) {
      const status = s.status in STR.zh.status ? s.status : "pending";
      const mark = { passed: "✓", failed: "✗", not_applicable: "–", pending: "…" }[status];
      const message = lang === "zh" ? (s.message_zh || s.message) : (s.message || s.message_zh);
      el.steps.append(node("li", { class: `s-${status}`, "data-step": s.step, "data-status": status },
        node("span", { class: "step-icon", role: "img", "aria-label": t(`status.${status}`) }, mark),
        node("span", { class: "step-name" }, t(`step.${s.step}`) || s.step),
        node("span", { class: "step-msg" }, message)));
    }
    el.stepsBlock.hidden = steps.length === 0;

    el.judgeActions.hidden = !r.code;
    updateJudgeButtons();
  }

  function showError(err, key) {
    shownError = err;
    shownError.key = key;
    renderError();
    el.error.hidden = false;
  }

  function errorParts(err) {
    if (err instanceof ApiError) {
      const p = err.problem || {};
      const title = lang === "zh" ? (p.title_zh || p.title) : (p.title || p.title_zh);
      const head = title || t("errorHttp", { status: err.status });
      // In Chinese the title is short; say what was wrong, with the server's English detail.
      const detail = lang === "zh" && p.detail && p.detail !== title ? p.detail : null;
      const code = p.code ? `HTTP ${err.status} · ${p.code}` : `HTTP ${err.status}`;
      return { head, hint: lang === "zh" ? problemHint(p) : null, detail, code };
    }
    if (err && err.key) return { head: t(err.key) };
    return { head: t("errorNetwork", { msg: err && err.message ? err.message : String(err) }) };
  }

  function problemHint(p) {
    const d = p.details || {};
    if (p.code !== "invalid_deposit_code") return null;
    if (d.want === 17 && d.got !== undefined) return t("problem.codeLength", { got: d.got });
    if (d.position !== undefined) return t("problem.codeChar", { position: d.position });
    if (/check character does not match/.test(p.detail || "")) return t("problem.codeCheck");
    return null;
  }

  function renderError() {
    const { head, hint, detail, code } = errorParts(shownError);
    el.error.replaceChildren(node("strong", { "data-testid": "error-title" }, head));
    if (hint) el.error.append(node("p", { class: "hint-zh", "data-testid": "error-hint" }, hint));
    if (detail) el.error.append(node("p", { class: "detail", lang: "en" }, `${t("detailLabel")}: ${detail}`));
    if (code) el.error.append(node("p", { class: "detail mono" }, code));
  }

  // --- judge's actions -----------------------------------------------------------------------

  const apiKey = () => el.apiKey.value.trim();

  function updateJudgeButtons() {
    const has = Boolean(apiKey());
    el.retrieve.disabled = !has;
    el.download.disabled = !has;
    el.judgeHint.hidden = has;
  }

  function setJudgeStatus(fn) {
    judgeText = fn;
    el.judgeStatus.textContent = fn ? fn() : "";
  }

  function judgeError(err) {
    setJudgeStatus(() => {
      const { head, hint, detail, code } = errorParts(err);
      return [head, hint, detail, code].filter(Boolean).join(" — ");
    });
  }

  async function retrieve() {
    if (!shown || !shown.report.code) return;
    el.retrieve.disabled = true;
    setJudgeStatus(() => t("retrieving"));
    try {
      const r = await api("GET", `${depositPath(shown.report.code)}/retrieve`, { key: apiKey() });
      if (!r.ok) fail(r);
      shownMeta = r.data;
      setJudgeStatus(null);
      renderMeta();
      renderReport(); // the depositor's name is in the bundle
      el.metaBlock.hidden = false;
    } catch (err) {
      judgeError(err);
    } finally {
      updateJudgeButtons();
    }
  }

  function renderMeta() {
    const dl = el.meta;
    dl.replaceChildren();
    const b = shownMeta || {};
    if (b.depositor && b.depositor.name) fact(dl, t("depositorName"), b.depositor.name, { field: "depositor_name" });
    const meta = b.meta && b.meta.meta ? b.meta.meta : {};
    const keys = Object.keys(meta);
    for (const k of keys) {
      const v = meta[k];
      fact(dl, t(`meta.${k}`) || k, typeof v === "string" ? v : JSON.stringify(v),
        { field: `meta.${k}`, sub: t(`meta.${k}`) ? k : null });
    }
    if (keys.length === 0) fact(dl, "", t("metaEmpty"));
    el.caseCheck.hidden = typeof meta.contract_no !== "string";
  }

  // The case the retrieved deposit belongs to (its contract number), against Annex B.
  async function checkCase() {
    const meta = shownMeta && shownMeta.meta && shownMeta.meta.meta;
    const depositor = shown && shown.report && shown.report.depositor;
    if (!meta || typeof meta.contract_no !== "string") return;
    el.caseCheck.disabled = true;
    setJudgeStatus(() => t("caseChecking"));
    try {
      const query = depositor ? `?depositor=${encodeURIComponent(depositor)}` : "";
      const path = `/v1/cases/${encodeURIComponent(meta.contract_no)}/check${query}`;
      const r = await api("GET", path, { key: apiKey() });
      if (!r.ok) fail(r);
      shownCase = r.data;
      setJudgeStatus(null);
      renderCase();
      el.caseBlock.hidden = false;
    } catch (err) {
      judgeError(err);
    } finally {
      el.caseCheck.disabled = false;
    }
  }

  function renderCase() {
    const c = shownCase;
    el.caseHeading.textContent = t("caseHeading", { contract: c.contract_no, depositor: c.depositor || "" });
    el.caseVerdict.textContent = c.complete ? t("caseComplete") : t("caseIncomplete");
    el.caseVerdict.className = `case-verdict ${c.complete ? "ok" : "bad"}`;
    el.caseElements.replaceChildren();
    const marks = { present: "✓", missing: "✗", not_provided: "–" };
    const statusClass = { present: "passed", missing: "failed", not_provided: "not_applicable" };
    for (const e of c.elements) {
      const formats = [...new Set(e.items.map((i) => c.items[i].format || "?"))].join("/");
      const name = lang === "zh" ? e.name_zh : `${e.name_en} (${e.name_zh})`;
      const detail = [t(`caseStatus.${e.status}`), t(`caseRequirement.${e.requirement}`)];
      if (e.count) detail.push(t("caseCount", { count: e.count, formats }));
      el.caseElements.append(node("li", { class: `s-${statusClass[e.status]}`, "data-kind": e.kind },
        node("span", { class: "step-icon", "aria-hidden": "true" }, marks[e.status]),
        node("span", { class: "step-name" }, name),
        node("span", { class: "step-msg" }, detail.join(" · "))));
    }
    el.caseIssues.replaceChildren();
    for (const issue of c.issues) {
      el.caseIssues.append(node("li", { class: issue.severity, "data-code": issue.code },
        lang === "zh" ? issue.message_zh : issue.message));
    }
  }

  async function downloadBundle() {
    if (!shown || !shown.report.code) return;
    const code = shown.report.code;
    el.download.disabled = true;
    setJudgeStatus(() => t("downloading"));
    try {
      const r = await api("GET", `${depositPath(code)}/bundle`, { key: apiKey() });
      if (!r.ok) fail(r);
      const name = `${code.replace(/-/g, "")}.bundle.json`;
      const blob = new Blob([JSON.stringify(r.data, null, 2)], { type: "application/json" });
      const url = URL.createObjectURL(blob);
      const a = node("a", { href: url, download: name, hidden: "" });
      document.body.append(a);
      a.click();
      a.remove();
      window.setTimeout(() => URL.revokeObjectURL(url), 60000);
      setJudgeStatus(() => t("downloaded", { name }));
    } catch (err) {
      judgeError(err);
    } finally {
      updateJudgeButtons();
    }
  }

  // --- wiring --------------------------------------------------------------------------------

  el.form.addEventListener("submit", (event) => {
    event.preventDefault();
    run();
  });
  function showFileName() {
    const file = el.file.files && el.file.files[0];
    el.fileName.textContent = file ? `${file.name} (${humanSize(file.size)})` : t("noFile");
    el.fileName.classList.toggle("empty", !file);
    el.clearFile.hidden = !file;
  }

  el.file.addEventListener("change", showFileName);
  el.clearFile.addEventListener("click", () => {
    el.file.value = "";
    showFileName();
    el.file.focus();
  });
  el.apiKey.addEventListener("input", updateJudgeButtons);
  el.retrieve.addEventListener("click", retrieve);
  el.download.addEventListener("click", downloadBundle);
  el.caseCheck.addEventListener("click", checkCase);

  applyLanguage();
  updateJudgeButtons();

  // /?code=CZ-… (the QR code on certificates): prefill and look the deposit up at once.
  const fromUrl = new URLSearchParams(window.location.search).get("code");
  if (fromUrl) {
    el.code.value = fromUrl;
    run();
  }
  document.documentElement.dataset.ready = "true";
})();
