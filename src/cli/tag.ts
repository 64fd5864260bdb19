/**
 * `meshctl tag set|generate|list|remove`: istioctl's revision-tag commands (istioctl/pkg/tag),
 * with its flags, messages and refusals, talking to the API server through client-node with the
 * kubeconfig (`--kubeconfig`, else $KUBECONFIG or ~/.kube/config, else in-cluster) and
 * `--context` as istioctl does.
 *
 * Left out from istioctl: the webhook-overlap analysis `tag set` runs before applying (it warns
 * about a tag whose selectors collide with another injector), and `--manifests` only names the
 * chart istioctl renders from: meshd builds the same webhook without a chart, so the flag is
 * accepted and ignored.
 */
import { AdmissionregistrationV1Api, CoreV1Api, KubeConfig, type V1MutatingWebhookConfiguration, type V1ValidatingWebhookConfiguration } from '@kubernetes/client-node';
import { Command, Option } from 'commander';
import * as YAML from 'yaml';
import { statusOf } from '../leader/lease';
import { parseOutput, tabulate } from './tables';
import {
  DEFAULT_REVISION,
  DEFAULT_VALIDATOR,
  NEVER_MATCH,
  REV_LABEL,
  TAG_LABEL,
  type WebhookConfiguration,
  buildDefaultValidator,
  buildTagWebhook,
  webhookRevision,
} from './tag-webhooks';

export interface TagIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  /** All of standard input (the answer to a confirmation prompt). */
  stdin: () => string;
}

interface KubeFlags {
  kubeconfig?: string;
  context?: string;
  istioNamespace: string;
}

interface SetFlags extends KubeFlags {
  revision?: string;
  overwrite?: boolean;
  skipConfirmation?: boolean;
  webhookName?: string;
  autoInjectNamespaces?: boolean;
  manifests?: string;
}

/** A kubeconfig as istioctl picks it: the file given, else $KUBECONFIG / ~/.kube/config / in-cluster; then `--context`. */
export function cliKubeConfig(f: { kubeconfig?: string; context?: string }): KubeConfig {
  const kc = new KubeConfig();
  if (f.kubeconfig) kc.loadFromFile(f.kubeconfig);
  else kc.loadFromDefault();
  if (f.context) {
    if (!kc.getContextObject(f.context)) throw new Error(`context "${f.context}" does not exist`);
    kc.setCurrentContext(f.context);
  }
  if (!kc.getCurrentCluster()) throw new Error('failed to create Kubernetes client: no current cluster in the kubeconfig');
  return kc;
}

/** The API calls the tag commands make, on plain JSON-shaped objects. */
export class TagClient {
  private readonly adm: AdmissionregistrationV1Api;
  private readonly core: CoreV1Api;

  constructor(kc: KubeConfig) {
    this.adm = kc.makeApiClient(AdmissionregistrationV1Api);
    this.core = kc.makeApiClient(CoreV1Api);
  }

  async mutating(labelSelector: string): Promise<WebhookConfiguration[]> {
    const l = await this.adm.listMutatingWebhookConfiguration({ labelSelector });
    return l.items.map((x) => plain(x, 'MutatingWebhookConfiguration'));
  }

  /** The revision's own injector webhooks: `istio.io/rev=<rev>` without `istio.io/tag`. */
  withRevision(rev: string): Promise<WebhookConfiguration[]> {
    return this.mutating(`${REV_LABEL}=${rev},!${TAG_LABEL}`);
  }

  withTag(tag: string): Promise<WebhookConfiguration[]> {
    return this.mutating(`${TAG_LABEL}=${tag}`);
  }

  async namespacesWithTag(tag: string): Promise<string[]> {
    const l = await this.core.listNamespace({ labelSelector: `${REV_LABEL}=${tag}` });
    return l.items.map((n) => n.metadata?.name ?? '');
  }

  async validator(name: string): Promise<WebhookConfiguration | undefined> {
    try {
      return plain(await this.adm.readValidatingWebhookConfiguration({ name }), 'ValidatingWebhookConfiguration');
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  /** Create, or replace what is there (kubectl apply's outcome for a whole object). */
  async apply(obj: WebhookConfiguration): Promise<void> {
    const name = obj.metadata.name;
    if (obj.kind === 'MutatingWebhookConfiguration') {
      const body = obj as unknown as V1MutatingWebhookConfiguration;
      try {
        const cur = await this.adm.readMutatingWebhookConfiguration({ name });
        await this.adm.replaceMutatingWebhookConfiguration({ name, body: { ...body, metadata: { ...body.metadata, resourceVersion: cur.metadata?.resourceVersion } } });
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
        await this.adm.createMutatingWebhookConfiguration({ body });
      }
      return;
    }
    const body = obj as unknown as V1ValidatingWebhookConfiguration;
    try {
      const cur = await this.adm.readValidatingWebhookConfiguration({ name });
      await this.adm.replaceValidatingWebhookConfiguration({ name, body: { ...body, metadata: { ...body.metadata, resourceVersion: cur.metadata?.resourceVersion } } });
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
      await this.adm.createValidatingWebhookConfiguration({ body });
    }
  }

  async replaceMutating(obj: WebhookConfiguration): Promise<void> {
    await this.adm.replaceMutatingWebhookConfiguration({ name: obj.metadata.name, body: obj as unknown as V1MutatingWebhookConfiguration });
  }

  async deleteMutating(name: string): Promise<void> {
    await this.adm.deleteMutatingWebhookConfiguration({ name });
  }
}

/** A client-node object as the JSON the API server sent (dates as strings, no undefined fields). */
function plain(x: object, kind: WebhookConfiguration['kind']): WebhookConfiguration {
  const o = JSON.parse(JSON.stringify(x)) as Partial<WebhookConfiguration>;
  // Only what these commands read or must send back: client-node wants Dates where the JSON has
  // timestamps, and a replace needs no server-set fields but resourceVersion.
  const m = o.metadata ?? { name: '' };
  const metadata: WebhookConfiguration['metadata'] = { name: m.name };
  if (m.labels) metadata.labels = m.labels;
  if (m.annotations) metadata.annotations = m.annotations;
  if (m.resourceVersion) metadata.resourceVersion = m.resourceVersion;
  return { apiVersion: 'admissionregistration.k8s.io/v1', kind, metadata, webhooks: o.webhooks ?? [] };
}

/** What `tag set` / `tag generate` produce: the tag webhook, and for `default` the validator. */
export async function generateTag(client: TagClient, tag: string, f: SetFlags & { generate: boolean }): Promise<WebhookConfiguration[]> {
  const revision = f.revision ?? '';
  if (!f.generate && !f.overwrite && tag !== DEFAULT_REVISION && (await client.withRevision(tag)).length > 0) {
    throw new Error(`cannot create revision tag "${tag}": found existing control plane revision with same name`);
  }
  const revWebhooks = await client.withRevision(revision);
  if (revWebhooks.length === 0) throw new Error(`cannot modify tag: cannot find MutatingWebhookConfiguration with revision "${revision}"`);
  if (revWebhooks.length > 1) throw new Error(`cannot modify tag: found multiple canonical webhooks with revision "${revision}"`);
  if ((await client.withTag(tag)).length > 0 && !f.overwrite) throw new Error(`revision tag "${tag}" already exists, and --overwrite is false`);
  const canonical = revWebhooks[0] as WebhookConfiguration;
  const opts = { tag, revision, istioNamespace: f.istioNamespace, webhookName: f.webhookName, autoInjectNamespaces: f.autoInjectNamespaces };
  let mwc: WebhookConfiguration;
  try {
    mwc = buildTagWebhook(canonical, opts);
  } catch (err) {
    throw new Error(`failed to create tag webhook config: ${(err as Error).message}`, { cause: err });
  }
  if (tag !== DEFAULT_REVISION) return [mwc];
  return [mwc, buildDefaultValidator(canonical, opts, await client.validator(DEFAULT_VALIDATOR))];
}

/**
 * istioctl's DeactivateIstioInjectionWebhook: once the default tag exists, the default revision's
 * own injector must stop matching (it would inject `istio-injection=enabled` namespaces a second
 * time). It is kept, selecting nothing, so the default tag can point back at it.
 */
async function deactivateDefaultInjector(client: TagClient): Promise<void> {
  const whs = await client.withRevision(DEFAULT_REVISION);
  if (whs.length === 0) return;
  if (whs.length > 1) throw new Error('failed deactivating existing default revision: expected a single webhook for default revision');
  const wh = whs[0] as WebhookConfiguration;
  for (const w of wh.webhooks) {
    w.namespaceSelector = structuredClone(NEVER_MATCH);
    w.objectSelector = structuredClone(NEVER_MATCH);
  }
  await client.replaceMutating(wh);
}

function toYaml(objs: readonly WebhookConfiguration[]): string {
  return objs.map((o) => YAML.stringify(o, { lineWidth: 0 })).join('---\n');
}

async function setTag(io: TagIo, tag: string, f: SetFlags, generate: boolean): Promise<void> {
  const client = new TagClient(cliKubeConfig(f));
  const objs = await generateTag(client, tag, { ...f, generate });
  if (generate) {
    io.stdout.write(toYaml(objs));
    return;
  }
  try {
    if (tag === DEFAULT_REVISION) await deactivateDefaultInjector(client);
    for (const o of objs) await client.apply(o);
  } catch (err) {
    throw new Error(`failed to apply tag webhook MutatingWebhookConfiguration to cluster: ${(err as Error).message}`, { cause: err });
  }
  io.stdout.write(
    `Revision tag "${tag}" created, referencing control plane revision "${f.revision ?? ''}". To enable injection using this\nrevision tag, use 'kubectl label namespace <NAMESPACE> istio.io/rev=${tag}'\n`,
  );
}

export interface TagDescription {
  tag: string;
  revision: string;
  namespaces: string[];
}

export async function listTags(client: TagClient): Promise<TagDescription[]> {
  const whs = await client.mutating(REV_LABEL);
  const byKey = new Map<string, TagDescription>();
  for (const wh of whs) {
    const tag = wh.metadata.labels?.[TAG_LABEL] ?? '';
    let revision: string;
    try {
      revision = webhookRevision(wh);
    } catch (err) {
      throw new Error(`error parsing revision from webhook "${wh.metadata.name}": ${(err as Error).message}`, { cause: err });
    }
    byKey.set(`${revision}\u0000${tag}`, { tag, revision, namespaces: await client.namespacesWithTag(tag) });
  }
  // A revision's own webhook is listed (with no tag) only if no tag points at the revision.
  for (const d of [...byKey.values()]) if (d.tag !== '') byKey.delete(`${d.revision}\u0000`);
  return [...byKey.values()].sort((a, b) => (a.revision !== b.revision ? (a.revision < b.revision ? -1 : 1) : a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));
}

function printTags(io: TagIo, tags: TagDescription[], output: string): void {
  if (output === 'json') {
    io.stdout.write(`${JSON.stringify(tags, null, '\t')}\n`);
    return;
  }
  if (output === 'yaml') {
    // sigs.k8s.io/yaml's shape: keys sorted, sequences not indented under their key.
    io.stdout.write(`${YAML.stringify(JSON.parse(JSON.stringify(tags, ['namespaces', 'revision', 'tag'])) as unknown, { lineWidth: 0, indentSeq: false })}\n`);
    return;
  }
  io.stdout.write(tabulate([['TAG', 'REVISION', 'NAMESPACES'], ...tags.map((t) => [t.tag, t.revision, t.namespaces.join(',')])], 1));
}

/** istioctl's util.Confirm: the answer is the first word of standard input; only y/yes proceeds. */
function confirm(io: TagIo, msg: string): boolean {
  io.stdout.write(`${msg} `);
  let input: string;
  try {
    input = io.stdin();
  } catch {
    return false;
  }
  const answer = (input.split('\n')[0] ?? '').trim().split(/\s+/)[0] ?? '';
  return ['Y', 'YES'].includes(answer.toUpperCase());
}

async function removeTag(io: TagIo, tag: string, f: KubeFlags & { skipConfirmation?: boolean }): Promise<void> {
  const client = new TagClient(cliKubeConfig(f));
  let whs: WebhookConfiguration[];
  try {
    whs = await client.withTag(tag);
  } catch (err) {
    throw new Error(`failed to retrieve tag with name ${tag}: ${(err as Error).message}`, { cause: err });
  }
  if (whs.length === 0) throw new Error(`cannot remove tag "${tag}": cannot find MutatingWebhookConfiguration for tag`);
  let namespaces: string[];
  try {
    namespaces = await client.namespacesWithTag(tag);
  } catch (err) {
    throw new Error(`failed to retrieve namespaces dependent on tag "${tag}"`, { cause: err });
  }
  if (namespaces.length > 0 && !f.skipConfirmation) {
    const msg = `Caution, found ${namespaces.length} namespace(s) still injected by tag "${tag}":${namespaces.map((n) => ` ${n}`).join('')}\nProceed with operation? [y/N]`;
    if (!confirm(io, msg)) {
      io.stdout.write('Aborting operation.\n');
      return;
    }
  }
  try {
    for (const wh of whs) await client.deleteMutating(wh.metadata.name);
  } catch (err) {
    throw new Error(`failed to delete Istio revision tag MutatingConfigurationWebhook: ${(err as Error).message}`, { cause: err });
  }
  io.stdout.write(`Revision tag ${tag} removed\n`);
}

function kubeFlags(cmd: Command): Command {
  return (
    cmd
      .option('-c, --kubeconfig <file>', 'Kubernetes configuration file (default: $KUBECONFIG or ~/.kube/config, else in-cluster)')
      .option('--context <name>', 'the name of the kubeconfig context to use')
      .option('-i, --istio-namespace <ns>', 'Istio system namespace', 'istio-system')
      // istioctl's global spelling, as meshctl's xDS commands take it.
      .addOption(new Option('--istioNamespace <ns>', 'the same as --istio-namespace').hideHelp())
  );
}

function setFlags(cmd: Command): Command {
  return kubeFlags(cmd)
    .option('-r, --revision <revision>', 'Control plane revision to reference from a given revision tag')
    .option('--overwrite', 'If true, allow revision tags to be overwritten, otherwise reject revision tag updates that overwrite existing revision tags.')
    .option('-y, --skip-confirmation', 'The skipConfirmation determines whether the user is prompted for confirmation.')
    .option('--webhook-name <name>', "Name to use for a revision tag's mutating webhook configuration.")
    .option('--auto-inject-namespaces', 'If set to true, the sidecars should be automatically injected into all namespaces by default')
    .option('-d, --manifests <path>', "accepted for istioctl's sake; meshd builds the webhook without a chart");
}

function fail(io: TagIo, err: unknown): void {
  io.stderr.write(`Error: ${(err as Error).message}\n`);
  process.exitCode = 1;
}

function oneTag(args: string[], what: 'creation' | 'removal'): string {
  if (args.length === 0) throw new Error(what === 'creation' ? 'must provide a tag for modification' : 'must provide a tag for removal');
  if (args.length > 1) throw new Error(`must provide a single tag for ${what}`);
  return args[0] as string;
}

export function tagCommand(io: TagIo): Command {
  const cmd = new Command('tag').description('Command group used to interact with revision tags');
  for (const [verb, generate] of [
    ['set', false],
    ['generate', true],
  ] as const) {
    setFlags(
      cmd
        .command(verb)
        .description(generate ? 'Generate configuration for a revision tag to stdout' : 'Create or modify revision tags')
        .argument('[tag...]', 'the revision tag'),
    ).action(async (args: string[], o: SetFlags) => {
      try {
        const tag = oneTag(args, 'creation');
        if (!o.revision) throw new Error('required flag(s) "revision" not set');
        await setTag(io, tag, o, generate);
      } catch (err) {
        fail(io, err);
      }
    });
  }
  kubeFlags(cmd.command('list').alias('show').description('List existing revision tags').argument('[args...]'))
    .option('-o, --output <format>', 'Output format for tag description (available formats: table,json,yaml)', 'table')
    .action(async (args: string[], o: KubeFlags & { output: string }) => {
      try {
        if (args.length !== 0) throw new Error('tag list command does not accept arguments');
        const output = parseOutput(o.output, ['table', 'json', 'yaml']);
        const tags = await listTags(new TagClient(cliKubeConfig(o)));
        if (tags.length === 0) {
          io.stdout.write('No Istio revision tag MutatingWebhookConfigurations to list\n');
          return;
        }
        printTags(io, tags, output);
      } catch (err) {
        fail(io, err);
      }
    });
  kubeFlags(cmd.command('remove').alias('delete').description('Remove Istio control plane revision tag').argument('[tag...]', 'the revision tag'))
    .option('-y, --skip-confirmation', 'The skipConfirmation determines whether the user is prompted for confirmation.')
    .action(async (args: string[], o: KubeFlags & { skipConfirmation?: boolean }) => {
      try {
        await removeTag(io, oneTag(args, 'removal'), o);
      } catch (err) {
        fail(io, err);
      }
    });
  return cmd;
}
