/**
 * systemd's nesting of slices: `a-b-c.slice` is /a.slice/a-b.slice/a-b-c.slice; `-.slice` is the root. Undefined
 * for what is not a slice name (an empty component, a slash, no `.slice` suffix), where runc's ExpandSlice fails.
 */
export function slicePath(slice: string): string | undefined {
  if (!slice.endsWith('.slice') || slice.length <= '.slice'.length || slice.includes('/')) return undefined;
  const name = slice.slice(0, -'.slice'.length);
  if (name === '-') return '/';
  let path = '';
  let prefix = '';
  for (const part of name.split('-')) {
    if (part === '') return undefined;
    path += `/${prefix}${part}.slice`;
    prefix += `${part}-`;
  }
  return path;
}
