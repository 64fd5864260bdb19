/**
 * `meshctl x describe pod|service`: istioctl's `x describe`, from the cluster (the kubeconfig's
 * current context, as istioctl reads it) or, with `-f`, from files and folders. What applies is
 * computed with meshd's own model (src/describe), so no proxy needs to be connected.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import { overlay, readCluster, readFiles } from '../analyze/read';
import { DescribeContext, DescribeError, describePod, describeService } from '../describe';
import type { ConfigObject } from '../model/objects';
import { useKubeValue } from './analyze';
import type { CliIo } from './xds-commands';

interface DescribeFlags {
  namespace: string;
  filename: string[];
  useKube?: boolean;
  kubeconfig?: string;
  recursive?: boolean;
  revision: string;
}

/** istioctl's InferPodInfo: `name.namespace` or `name` in the flag's namespace. */
function nameAndNamespace(arg: string, namespace: string): [string, string] {
  const dot = arg.lastIndexOf('.');
  return dot > 0 ? [arg.slice(0, dot), arg.slice(dot + 1)] : [arg, namespace];
}

async function objectsFor(o: DescribeFlags): Promise<ConfigObject[]> {
  const files = readFiles(o.filename, { recursive: o.recursive === true });
  if (files.parseErrors.length > 0) throw new Error(files.parseErrors.join('\n'));
  const useKube = o.useKube ?? o.filename.length === 0;
  if (!useKube) return files.objects;
  const kubeconfig = o.kubeconfig ?? process.env['KUBECONFIG']?.split(path.delimiter)[0] ?? path.join(os.homedir(), '.kube', 'config');
  const cluster = await readCluster({ kubeconfig });
  return overlay(cluster.objects, files.objects);
}

function describeVerb(io: CliIo, use: string, alias: string, what: 'pod' | 'service'): Command {
  const spilled: string[] = [];
  return new Command(use)
    .alias(alias)
    .description(what === 'pod' ? 'Describe a pod and the Istio configuration that applies to it' : 'Describe a service and the Istio configuration that applies to it')
    .argument(`<${what}>`, `${what} name, or name.namespace`)
    .option('-n, --namespace <ns>', 'namespace of the object named without one', 'default')
    .option('-f, --filename <file>', 'read objects from this file or folder instead of the cluster (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('-k, --use-kube [bool]', 'read the cluster (the default without -f); with -f, apply the files over it', useKubeValue(spilled))
    .option('--kubeconfig <file>', 'kubeconfig to reach the cluster with (default $KUBECONFIG, ~/.kube/config)')
    .option('-R, --recursive', "read folders' subfolders too")
    .option('-r, --revision <rev>', 'the control-plane revision pods are injected by', 'default')
    .action(async (arg: string, o: DescribeFlags) => {
      try {
        if (spilled.length > 0) throw new Error(`-k takes true or false, not ${JSON.stringify(spilled[0])}`);
        const [name, ns] = nameAndNamespace(arg, o.namespace);
        const ctx = new DescribeContext(await objectsFor(o), { domain: 'cluster.local', namespace: o.namespace, revision: o.revision });
        io.stdout.write(what === 'pod' ? describePod(ctx, ns, name) : describeService(ctx, ns, name));
      } catch (err) {
        io.stderr.write(`Error: ${err instanceof DescribeError ? err.message : (err as Error).message}\n`);
        process.exitCode = 1;
      }
    });
}

/** `meshctl x`: istioctl's experimental verbs. */
export function experimentalCommand(io: CliIo): Command {
  const x = new Command('x').alias('experimental').description('experimental commands (as istioctl x)');
  const describe = new Command('describe').alias('des').description('Describe resource and related Istio configuration');
  describe.addCommand(describeVerb(io, 'pod', 'po', 'pod'));
  describe.addCommand(describeVerb(io, 'service', 'svc', 'service'));
  x.addCommand(describe);
  return x;
}
