// The cold-chain record's pages (issue 13): filled in once its API is there (docs/cold-chain.md).
import {t} from '../i18n.js';
import {h, put} from '../dom.js';

export function coldChainView(root) {
  put(root, h('h1', {text: t('coldchain.title')}), h('p', {class: 'muted', text: t('coldchain.pending')}));
  return {};
}
