// SPDX-License-Identifier: GPL-2.0
/*
 * xfs_vmap: XFS's 2007 lazy-unmap bug, recreated inside a stock Linux kernel.
 *
 * XFS (fs/xfs/linux-2.6/xfs_buf.c, 2.6.2x) mapped multi-page buffers with vmap() and, on
 * release, only queued the address for a later vunmap (free_address(): a "lazy" purge) while
 * the pages went straight back to the page allocator.  Until the purge ran, the vmalloc area
 * kept a WRITABLE mapping of pages that anybody could reuse.  When one came back as a page
 * table, Xen refused to pin it (a frame may become a pagetable only when no writable mapping
 * of it exists) and the guest died in xen_pgd_pin().
 *
 * On load this module does what such a buffer cache does, as chosen by variant=:
 *   lazy   vmap() a batch of fresh pages, write through the alias, free the pages, keep the
 *          alias mapped for a deferred vunmap (the bug);
 *   eager  vunmap() before freeing the pages (the fix that costs a flush per buffer);
 *   refs   the vmap holds a page reference until the deferred vunmap: vmap_pages() takes one
 *          per page, vunmap_pages(release) drops them after unmapping (the seed's patch), so a
 *          released buffer's pages cannot be reused while the stale alias exists.
 * The deferred vunmap runs when the module is removed (rmmod), as XFS purged at teardown.
 *
 * /init forks processes meanwhile; /sys/module/xfs_vmap/parameters/landed reports how many of
 * the released pages are now pinned pagetables (PG_pinned, which Linux sets on every page
 * xen_pgd_pin() pins) and how many of those still have a stale alias.
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mm.h>
#include <linux/vmalloc.h>
#include <linux/slab.h>
#include <linux/string.h>

#define PFX "XFSVMAP "

static char *variant = "lazy";
module_param(variant, charp, 0444);
MODULE_PARM_DESC(variant, "lazy (the bug) | eager | refs (the fix)");

static unsigned int buffers = 32;
module_param(buffers, uint, 0444);
MODULE_PARM_DESC(buffers, "buffers to map and release (1..256)");

static unsigned int pages_per_buffer = 4;
module_param(pages_per_buffer, uint, 0444);
MODULE_PARM_DESC(pages_per_buffer, "pages per buffer (1..64)");

enum variant { V_LAZY, V_EAGER, V_REFS };

/* One released buffer: its pages and, until the deferred vunmap, its vmap alias. */
struct xbuf {
	struct page **pages;
	unsigned int count;
	void *addr;		/* NULL once unmapped */
};

static enum variant which;
static struct xbuf *bufs;
static unsigned int nbufs;

/* The seed's vmap_pages(): map and take a reference per page, held by the mapping. */
static void *vmap_pages(struct page **pages, unsigned int count)
{
	void *addr = vmap(pages, count, VM_MAP, PAGE_KERNEL);
	unsigned int i;

	if (addr)
		for (i = 0; i < count; i++)
			get_page(pages[i]);
	return addr;
}

/* The seed's vunmap_pages(): unmap, then (release) drop the mapping's page references. */
static void vunmap_pages(void *addr, struct page **pages, unsigned int count, bool release)
{
	unsigned int i;

	vunmap(addr);
	if (release)
		for (i = 0; i < count; i++)
			put_page(pages[i]);
}

/* Released pages that are now pinned pagetables, and how many of those still have an alias. */
static void count_landed(unsigned int *landed, unsigned int *aliased)
{
	unsigned int b, i;

	*landed = 0;
	*aliased = 0;
	for (b = 0; b < nbufs; b++)
		for (i = 0; i < bufs[b].count; i++)
			if (PagePinned(bufs[b].pages[i])) {
				(*landed)++;
				if (bufs[b].addr)
					(*aliased)++;
			}
}

static int landed_get(char *buf, const struct kernel_param *kp)
{
	unsigned int landed, aliased;

	count_landed(&landed, &aliased);
	return sysfs_emit(buf, "%u %u\n", landed, aliased);
}

static const struct kernel_param_ops landed_ops = { .get = landed_get };
module_param_cb(landed, &landed_ops, NULL, 0444);
MODULE_PARM_DESC(landed, "released pages now pinned as pagetables, and of those still aliased");

static void free_buffer_pages(struct page **pages, unsigned int count)
{
	unsigned int i;

	for (i = 0; i < count; i++)
		__free_page(pages[i]);
}

/* The deferred vunmap of every buffer still mapped, as XFS's purge ran it at last. */
static unsigned int purge(void)
{
	unsigned int b, purged = 0;

	for (b = 0; b < nbufs; b++) {
		struct xbuf *x = &bufs[b];

		if (x->addr) {
			vunmap_pages(x->addr, x->pages, x->count, which == V_REFS);
			x->addr = NULL;
			purged++;
		}
		kfree(x->pages);
	}
	kfree(bufs);
	return purged;
}

/* Map one buffer of fresh pages and use it through the alias (the vmalloc PTEs are writable). */
static int map_buffer(struct xbuf *x)
{
	unsigned int i;

	x->pages = kcalloc(pages_per_buffer, sizeof(*x->pages), GFP_KERNEL);
	if (!x->pages)
		return -ENOMEM;
	for (; x->count < pages_per_buffer; x->count++) {
		x->pages[x->count] = alloc_page(GFP_KERNEL);
		if (!x->pages[x->count])
			goto fail;
	}
	x->addr = which == V_REFS ? vmap_pages(x->pages, x->count)
				  : vmap(x->pages, x->count, VM_MAP, PAGE_KERNEL);
	if (!x->addr)
		goto fail;
	memset(x->addr, 0x58, (size_t)x->count * PAGE_SIZE);
	return 0;

fail:
	for (i = 0; i < x->count; i++)
		__free_page(x->pages[i]);
	kfree(x->pages);
	x->pages = NULL;
	return -ENOMEM;
}

/* Release a buffer: eager unmaps first; lazy and refs queue the address for the purge. */
static void release_buffer(struct xbuf *x)
{
	if (which == V_EAGER) {
		vunmap(x->addr);
		x->addr = NULL;
	}
	/* The buffer's own references go back; under refs the mapping still holds one. */
	free_buffer_pages(x->pages, x->count);
}

static int __init xfs_vmap_init(void)
{
	unsigned int b, mapped = 0;
	unsigned long lo, hi;
	int err;

	if (!strcmp(variant, "lazy")) {
		which = V_LAZY;
	} else if (!strcmp(variant, "eager")) {
		which = V_EAGER;
	} else if (!strcmp(variant, "refs")) {
		which = V_REFS;
	} else {
		pr_err(PFX "variant=%s: not lazy, eager or refs\n", variant);
		return -EINVAL;
	}
	if (!buffers || buffers > 256 || !pages_per_buffer || pages_per_buffer > 64) {
		pr_err(PFX "buffers=%u pages_per_buffer=%u out of range\n", buffers,
		       pages_per_buffer);
		return -EINVAL;
	}
	bufs = kcalloc(buffers, sizeof(*bufs), GFP_KERNEL);
	if (!bufs)
		return -ENOMEM;
	/* A batch of buffers in use at once (distinct pages), then released together. */
	for (nbufs = 0; nbufs < buffers; nbufs++) {
		err = map_buffer(&bufs[nbufs]);
		if (err) {
			pr_err(PFX "out of memory after %u buffers\n", nbufs);
			for (b = 0; b < nbufs; b++)
				release_buffer(&bufs[b]);
			purge();
			return err;
		}
		mapped += bufs[nbufs].count;
	}
	/* Where the aliases live, so a hypervisor's refusal can be checked against it. */
	lo = ULONG_MAX;
	hi = 0;
	for (b = 0; b < nbufs; b++) {
		unsigned long a = (unsigned long)bufs[b].addr;

		lo = min(lo, a);
		hi = max(hi, a + bufs[b].count * PAGE_SIZE);
	}
	pr_info(PFX "vmap aliases %px-%px (%u buffers of %u pages)\n", (void *)lo, (void *)hi,
		nbufs, pages_per_buffer);
	for (b = 0; b < nbufs; b++)
		release_buffer(&bufs[b]);
	pr_info(PFX "variant=%s buffers=%u mapped=%u freed=%u stale_aliases=%u held_refs=%u\n",
		variant, nbufs, mapped, which == V_REFS ? 0 : mapped,
		which == V_EAGER ? 0 : nbufs, which == V_REFS ? mapped : 0);
	return 0;
}

static void __exit xfs_vmap_exit(void)
{
	unsigned int landed, aliased, purged;

	count_landed(&landed, &aliased);
	purged = purge();
	pr_info(PFX "variant=%s deferred_vunmaps=%u landed=%u aliased=%u\n", variant, purged,
		landed, aliased);
}

module_init(xfs_vmap_init);
module_exit(xfs_vmap_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("XFS's 2007 lazy vunmap pattern: stale vmap aliases of freed pages");
