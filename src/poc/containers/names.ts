/** Names for containers created without --name, as docker makes them: adjective_noun. */

const ADJECTIVES = [
  'brave', 'calm', 'clever', 'eager', 'fancy', 'gentle', 'happy', 'jolly', 'keen', 'lucid', 'merry', 'nifty',
  'proud', 'quick', 'quiet', 'sharp', 'shy', 'silly', 'sleepy', 'snappy', 'sunny', 'swift', 'tender', 'vivid',
  'wise', 'witty', 'young', 'zealous', 'bold', 'cosmic', 'dreamy', 'fervent',
];
const NOUNS = [
  'albatross', 'badger', 'beaver', 'bison', 'cheetah', 'condor', 'dolphin', 'falcon', 'ferret', 'gazelle', 'gecko',
  'heron', 'ibis', 'jaguar', 'koala', 'lemur', 'lynx', 'marmot', 'narwhal', 'ocelot', 'otter', 'panda', 'puffin',
  'quokka', 'raven', 'salmon', 'tapir', 'toucan', 'walrus', 'wombat', 'yak', 'zebra',
];

/** Web Crypto rather than node:crypto, which takes milliseconds to load in the Bun binary. */
function pick(words: string[]): string {
  return words[crypto.getRandomValues(new Uint32Array(1))[0]! % words.length]!;
}

export function randomName(): string {
  return `${pick(ADJECTIVES)}_${pick(NOUNS)}`;
}
